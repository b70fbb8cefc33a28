/* The floor of the NSS benchmark: a glibc NSS module that answers every
 * getpwnam_r, getpwuid_r, getgrnam_r, getgrgid_r and initgroups_dyn with
 * one fixed entry and does nothing else (no file, no system call, no
 * lookup). What glibc's dispatch costs around a module is what a lookup
 * through it costs. nss_bench compiles it (cc -O2 -shared) into
 * libnss_floor.so.2 and names it `floor` in nsswitch.conf.
 *
 * The fixed entries are shaped like the benchmark's: a user of the same
 * string lengths, a group like its median one (a team: 33 members with
 * names of nine characters), five supplementary gids. The answer's size is
 * the caller's to pick, not the module's cost, so the floor copies as much
 * as the module measured does.
 *
 * It does read the name it is asked for (an empty one is not found), as
 * every real module must: the benchmark asks for random names of a large
 * table, so the caller's key is often out of the CPU cache, and a floor
 * that never touched it would charge that miss to the module measured. */
#include <errno.h>
#include <grp.h>
#include <nss.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

static const char *const user_strings[] = {"user12345", "x", "Bench User 12345",
                                           "/home/user12345", "/bin/bash"};
static const char *const group_name = "team1234";
static const char *const group_members[] = {
    "user10007", "user12738", "user15469", "user18200", "user20931", "user23662", "user26393",
    "user29124", "user31855", "user34586", "user37317", "user40048", "user42779", "user45510",
    "user48241", "user50972", "user53703", "user56434", "user59165", "user61896", "user64627",
    "user67358", "user70089", "user72820", "user75551", "user78282", "user81013", "user83744",
    "user86475", "user89206", "user91937", "user94668", "user97399"};
#define MEMBERS 33

static char *put(char **at, size_t *left, const char *s) {
    size_t n = strlen(s) + 1;
    if (n > *left)
        return NULL;
    char *out = memcpy(*at, s, n);
    *at += n;
    *left -= n;
    return out;
}

/* Reads the caller's key, as any lookup must. */
static int key_is_empty(const char *name) { return name[0] == '\0'; }

static enum nss_status fill_user(struct passwd *pw, char *buf, size_t len, int *errnop) {
    char *at = buf;
    size_t left = len;
    char *s[5];
    for (int i = 0; i < 5; i++) {
        s[i] = put(&at, &left, user_strings[i]);
        if (s[i] == NULL) {
            *errnop = ERANGE;
            return NSS_STATUS_TRYAGAIN;
        }
    }
    pw->pw_name = s[0];
    pw->pw_passwd = s[1];
    pw->pw_uid = 112345;
    pw->pw_gid = 200001;
    pw->pw_gecos = s[2];
    pw->pw_dir = s[3];
    pw->pw_shell = s[4];
    return NSS_STATUS_SUCCESS;
}

static enum nss_status fill_group(struct group *gr, char *buf, size_t len, int *errnop) {
    size_t align = (8 - ((size_t)buf & 7)) & 7;
    size_t need = align + (MEMBERS + 1) * sizeof(char *);
    if (need > len) {
        *errnop = ERANGE;
        return NSS_STATUS_TRYAGAIN;
    }
    char **mem = (char **)(buf + align);
    char *at = buf + need;
    size_t left = len - need;
    for (int i = 0; i < MEMBERS; i++) {
        mem[i] = put(&at, &left, group_members[i]);
        if (mem[i] == NULL) {
            *errnop = ERANGE;
            return NSS_STATUS_TRYAGAIN;
        }
    }
    mem[MEMBERS] = NULL;
    gr->gr_name = put(&at, &left, group_name);
    gr->gr_passwd = put(&at, &left, "x");
    if (gr->gr_name == NULL || gr->gr_passwd == NULL) {
        *errnop = ERANGE;
        return NSS_STATUS_TRYAGAIN;
    }
    gr->gr_gid = 201234;
    gr->gr_mem = mem;
    return NSS_STATUS_SUCCESS;
}

enum nss_status _nss_floor_getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t len,
                                      int *errnop) {
    if (key_is_empty(name))
        return NSS_STATUS_NOTFOUND;
    return fill_user(pw, buf, len, errnop);
}

enum nss_status _nss_floor_getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t len,
                                      int *errnop) {
    (void)uid;
    return fill_user(pw, buf, len, errnop);
}

enum nss_status _nss_floor_getgrnam_r(const char *name, struct group *gr, char *buf, size_t len,
                                      int *errnop) {
    if (key_is_empty(name))
        return NSS_STATUS_NOTFOUND;
    return fill_group(gr, buf, len, errnop);
}

enum nss_status _nss_floor_getgrgid_r(gid_t gid, struct group *gr, char *buf, size_t len,
                                      int *errnop) {
    (void)gid;
    return fill_group(gr, buf, len, errnop);
}

enum nss_status _nss_floor_initgroups_dyn(const char *user, gid_t skip, long *start, long *size,
                                          gid_t **groupsp, long limit, int *errnop) {
    static const gid_t gids[] = {200001, 200050, 201234, 205678, 209999};
    (void)limit;
    if (key_is_empty(user))
        return NSS_STATUS_NOTFOUND;
    for (unsigned i = 0; i < sizeof gids / sizeof gids[0]; i++) {
        if (gids[i] == skip)
            continue;
        if (*start == *size) {
            long grown = *size ? *size * 2 : 8;
            gid_t *p = realloc(*groupsp, (size_t)grown * sizeof(gid_t));
            if (p == NULL) {
                *errnop = ENOMEM;
                return NSS_STATUS_TRYAGAIN;
            }
            *groupsp = p;
            *size = grown;
        }
        (*groupsp)[(*start)++] = gids[i];
    }
    return NSS_STATUS_SUCCESS;
}
