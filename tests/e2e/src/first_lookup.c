/* One getpwnam_r through glibc in a fresh C program, as `id` or `ls -l`
 * makes it: unlike the benchmark's own Rust processes, a C program has no
 * libgcc_s loaded. Prints the lookup's duration in nanoseconds; exits 1 if
 * the user was not found. */
#include <pwd.h>
#include <stdio.h>
#include <time.h>

int main(int argc, char **argv) {
    struct passwd pw;
    struct passwd *found = NULL;
    char buf[4096];
    struct timespec start, end;
    if (argc != 2) {
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    int rc = getpwnam_r(argv[1], &pw, buf, sizeof buf, &found);
    clock_gettime(CLOCK_MONOTONIC, &end);
    if (rc != 0 || found == NULL) {
        return 1;
    }
    printf("%lld\n", (long long)(end.tv_sec - start.tv_sec) * 1000000000LL +
                         (end.tv_nsec - start.tv_nsec));
    return 0;
}
