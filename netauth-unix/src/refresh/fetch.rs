//! Fetching every entity and group with few calls, and proving it complete.
//!
//! Every NetAuth search answers at most 16,000 results, silently. So the
//! refresh never trusts one big search: it asks for entities by `Number`
//! range (`+Number:>=LO +Number:<HI`, starting with the whole int32 range,
//! negative numbers included), and when an answer holds `cap` results it
//! throws the answer away and splits the range at the median of the numbers
//! it did get. A range answered with fewer than `cap` results is complete,
//! so once every range is answered under the cap the union is provably the
//! whole directory (of numbered entities: an entity without a number cannot
//! be a Unix user anyway). 20,000 entities take three calls.
//!
//! Groups are few: one `GroupSearch("*")`; only if that answer is capped are
//! groups fetched by `Number` range the same way.
//!
//! An answer that does not honour the range (a result outside it or without
//! a number) means the server did not understand the query; the refresh
//! stops rather than guess. So does a single number held by `cap` or more
//! results, and a runaway number of calls.

use std::future::Future;

use super::model::{SourceEntity, SourceGroup};

/// Where the refresh reads the directory from: the real client, or a fake
/// in unit tests.
pub(crate) trait DirectorySource {
    type Error;
    fn search_entities(
        &mut self,
        expression: &str,
    ) -> impl Future<Output = Result<Vec<SourceEntity>, Self::Error>>;
    fn search_groups(
        &mut self,
        expression: &str,
    ) -> impl Future<Output = Result<Vec<SourceGroup>, Self::Error>>;
}

/// Counts the calls made through it, failed ones included.
pub(crate) struct Counting<'a, S> {
    pub inner: &'a mut S,
    pub calls: u32,
}

impl<S: DirectorySource> DirectorySource for Counting<'_, S> {
    type Error = S::Error;
    async fn search_entities(&mut self, expression: &str) -> Result<Vec<SourceEntity>, S::Error> {
        self.calls += 1;
        self.inner.search_entities(expression).await
    }
    async fn search_groups(&mut self, expression: &str) -> Result<Vec<SourceGroup>, S::Error> {
        self.calls += 1;
        self.inner.search_groups(expression).await
    }
}

/// The smallest and one past the largest int32.
const FULL_LO: i64 = i32::MIN as i64;
const FULL_HI: i64 = i32::MAX as i64 + 1;

/// A refresh that needs more calls than this is not converging; stop.
pub(crate) const MAX_CALLS: u32 = 10_000;

/// A half-open range of numbers `[lo, hi)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NumberRange {
    pub lo: i64,
    pub hi: i64,
}

impl NumberRange {
    /// The search expression selecting exactly this range.
    pub fn expression(&self) -> String {
        format!("+Number:>={} +Number:<{}", self.lo, self.hi)
    }
    fn contains(&self, n: i32) -> bool {
        (self.lo..self.hi).contains(&i64::from(n))
    }
}

/// Why a set of answers cannot be proved complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncompleteError {
    #[error("the server answered the search {expression:?} with a result without a number")]
    MissingNumber { expression: String },
    #[error("the server answered the search {expression:?} with number {number}, outside the range asked for")]
    OutOfRange { expression: String, number: i32 },
    #[error("{count} or more results share number {number}; the search cap ({count}) makes a complete fetch impossible")]
    CappedSingleNumber { number: i64, count: usize },
    #[error("the search did not converge within {MAX_CALLS} calls")]
    TooManyCalls,
}

/// What to do with one range's answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The answer is complete: keep it.
    Complete,
    /// The answer was capped: discard it, the range was split.
    Split,
}

/// Plans range searches: which range to ask next, and whether an answer is
/// complete. Pure logic, no I/O.
#[derive(Debug)]
pub(crate) struct RangePlanner {
    pending: Vec<NumberRange>,
    cap: usize,
}

impl RangePlanner {
    /// Starts with the whole int32 range. `cap` is the server's answer cap.
    pub fn new(cap: usize) -> Self {
        RangePlanner {
            pending: vec![NumberRange {
                lo: FULL_LO,
                hi: FULL_HI,
            }],
            cap: cap.max(1),
        }
    }

    /// The next range to search, if any is left.
    pub fn next_range(&mut self) -> Option<NumberRange> {
        self.pending.pop()
    }

    /// Judges the answer to `range` given the numbers of its results.
    pub fn answer(
        &mut self,
        range: NumberRange,
        numbers: &[Option<i32>],
    ) -> Result<Verdict, IncompleteError> {
        let mut nums = Vec::with_capacity(numbers.len());
        for n in numbers {
            match n {
                None => {
                    return Err(IncompleteError::MissingNumber {
                        expression: range.expression(),
                    })
                }
                Some(n) if !range.contains(*n) => {
                    return Err(IncompleteError::OutOfRange {
                        expression: range.expression(),
                        number: *n,
                    })
                }
                Some(n) => nums.push(i64::from(*n)),
            }
        }
        if nums.len() < self.cap {
            return Ok(Verdict::Complete);
        }
        if range.hi - range.lo <= 1 {
            return Err(IncompleteError::CappedSingleNumber {
                number: range.lo,
                count: self.cap,
            });
        }
        nums.sort_unstable();
        // `nums` holds at least `cap` (>= 1) numbers; were it empty, `lo`
        // would still give a valid split below.
        let median = nums.get(nums.len() / 2).copied().unwrap_or(range.lo);
        // The median can equal `lo` when many results share the lowest
        // number; splitting just above it still shrinks both halves.
        let at = if median > range.lo {
            median
        } else {
            range.lo + 1
        };
        // Upper half first on the stack, so the lower half is asked next.
        self.pending.push(NumberRange {
            lo: at,
            hi: range.hi,
        });
        self.pending.push(NumberRange {
            lo: range.lo,
            hi: at,
        });
        Ok(Verdict::Split)
    }
}

/// Everything fetched, and how many calls it took.
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    pub entities: Vec<SourceEntity>,
    pub groups: Vec<SourceGroup>,
    pub entity_calls: u32,
    pub group_calls: u32,
}

/// A failed fetch.
#[derive(Debug)]
pub(crate) enum FetchError<E> {
    /// A call failed: which one and why.
    Call {
        method: &'static str,
        expression: String,
        calls_before: u32,
        source: E,
    },
    /// The answers cannot be proved complete.
    Incomplete(IncompleteError),
}

/// Fetches all numbered entities and all groups.
pub(crate) async fn fetch_all<S: DirectorySource>(
    source: &mut S,
    cap: usize,
) -> Result<Fetched, FetchError<S::Error>> {
    let mut out = Fetched::default();

    let mut planner = RangePlanner::new(cap);
    while let Some(range) = planner.next_range() {
        if out.entity_calls >= MAX_CALLS {
            return Err(FetchError::Incomplete(IncompleteError::TooManyCalls));
        }
        let expression = range.expression();
        let answer = source
            .search_entities(&expression)
            .await
            .map_err(|source| FetchError::Call {
                method: "EntitySearch",
                expression: expression.clone(),
                calls_before: out.entity_calls,
                source,
            })?;
        out.entity_calls += 1;
        let numbers: Vec<Option<i32>> = answer.iter().map(|e| e.number).collect();
        if planner
            .answer(range, &numbers)
            .map_err(FetchError::Incomplete)?
            == Verdict::Complete
        {
            out.entities.extend(answer);
        }
    }

    // Grown by doubling while the answers came; the spare room would stay
    // allocated until the directory is mapped.
    out.entities.shrink_to_fit();

    let all = source
        .search_groups("*")
        .await
        .map_err(|source| FetchError::Call {
            method: "GroupSearch",
            expression: "*".to_owned(),
            calls_before: 0,
            source,
        })?;
    out.group_calls += 1;
    if all.len() < cap.max(1) {
        out.groups = all;
        return Ok(out);
    }
    drop(all);
    let mut planner = RangePlanner::new(cap);
    while let Some(range) = planner.next_range() {
        if out.group_calls >= MAX_CALLS {
            return Err(FetchError::Incomplete(IncompleteError::TooManyCalls));
        }
        let expression = range.expression();
        let answer =
            source
                .search_groups(&expression)
                .await
                .map_err(|source| FetchError::Call {
                    method: "GroupSearch",
                    expression: expression.clone(),
                    calls_before: out.group_calls,
                    source,
                })?;
        out.group_calls += 1;
        let numbers: Vec<Option<i32>> = answer.iter().map(|g| g.number).collect();
        if planner
            .answer(range, &numbers)
            .map_err(FetchError::Incomplete)?
            == Verdict::Complete
        {
            out.groups.extend(answer);
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Parses our own range expressions back (the fake server's query language).
    pub(crate) fn parse_range(expr: &str) -> Option<(i64, i64)> {
        let (a, b) = expr.split_once(' ')?;
        let lo = a.strip_prefix("+Number:>=")?.parse().ok()?;
        let hi = b.strip_prefix("+Number:<")?.parse().ok()?;
        Some((lo, hi))
    }

    /// A fake directory that answers like NetAuth: capped, in an order that
    /// is not sorted by number (so the capped sample is uneven).
    pub(crate) struct FakeDirectory {
        pub entities: Vec<SourceEntity>,
        pub groups: Vec<SourceGroup>,
        pub cap: usize,
        pub entity_calls: u32,
        pub fail_entity_call: Option<u32>,
    }

    impl FakeDirectory {
        pub fn with_numbers(numbers: impl IntoIterator<Item = i32>, cap: usize) -> Self {
            let mut entities: Vec<SourceEntity> = numbers
                .into_iter()
                .enumerate()
                .map(|(i, n)| SourceEntity {
                    id: format!("u{i}"),
                    number: Some(n),
                    ..Default::default()
                })
                .collect();
            // A stable pseudo-random order.
            entities.sort_by_key(|e| {
                (e.number.unwrap_or(0) as u32)
                    .wrapping_mul(2_654_435_761)
                    .rotate_left(7)
            });
            FakeDirectory {
                entities,
                groups: vec![],
                cap,
                entity_calls: 0,
                fail_entity_call: None,
            }
        }
    }

    fn bad_expression() -> std::io::Error {
        std::io::Error::other("bad expression")
    }

    impl DirectorySource for FakeDirectory {
        type Error = std::io::Error;
        async fn search_entities(
            &mut self,
            expr: &str,
        ) -> Result<Vec<SourceEntity>, std::io::Error> {
            if self.fail_entity_call == Some(self.entity_calls) {
                return Err(std::io::Error::other("injected failure"));
            }
            self.entity_calls += 1;
            let (lo, hi) = parse_range(expr).ok_or_else(bad_expression)?;
            Ok(self
                .entities
                .iter()
                .filter(|e| e.number.is_some_and(|n| (lo..hi).contains(&i64::from(n))))
                .take(self.cap)
                .cloned()
                .collect())
        }
        async fn search_groups(&mut self, expr: &str) -> Result<Vec<SourceGroup>, std::io::Error> {
            let range = if expr == "*" {
                None
            } else {
                Some(parse_range(expr).ok_or_else(bad_expression)?)
            };
            Ok(self
                .groups
                .iter()
                .filter(|g| match range {
                    None => true,
                    Some((lo, hi)) => g.number.is_some_and(|n| (lo..hi).contains(&i64::from(n))),
                })
                .take(self.cap)
                .cloned()
                .collect())
        }
    }

    pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn sorted_numbers(f: &Fetched) -> Vec<i32> {
        let mut v: Vec<i32> = f.entities.iter().filter_map(|e| e.number).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn expression_format() {
        let r = NumberRange { lo: -5, hi: 10 };
        assert_eq!(r.expression(), "+Number:>=-5 +Number:<10");
        let full = RangePlanner::new(16_000).next_range().unwrap();
        assert_eq!(
            full.expression(),
            "+Number:>=-2147483648 +Number:<2147483648"
        );
    }

    #[test]
    fn under_cap_is_one_call() {
        let mut dir = FakeDirectory::with_numbers(1000..2000, 16_000);
        let f = block_on(fetch_all(&mut dir, 16_000)).unwrap();
        assert_eq!(f.entity_calls, 1);
        assert_eq!(sorted_numbers(&f), (1000..2000).collect::<Vec<_>>());
    }

    #[test]
    fn twenty_thousand_over_a_16000_cap_is_complete_in_three_calls() {
        let mut dir = FakeDirectory::with_numbers(1000..21_000, 16_000);
        let f = block_on(fetch_all(&mut dir, 16_000)).unwrap();
        assert_eq!(sorted_numbers(&f), (1000..21_000).collect::<Vec<_>>());
        assert_eq!(f.entity_calls, 3);
    }

    #[test]
    fn includes_negative_and_extreme_numbers() {
        let mut nums: Vec<i32> = (0..500).map(|i| -i * 1000).collect();
        nums.extend([i32::MIN, i32::MAX, 0, 1]);
        nums.sort_unstable();
        nums.dedup();
        let mut dir = FakeDirectory::with_numbers(nums.clone(), 50);
        let f = block_on(fetch_all(&mut dir, 50)).unwrap();
        assert_eq!(sorted_numbers(&f), nums);
    }

    #[test]
    fn small_cap_converges_with_few_calls() {
        // 10,000 entities, cap 100: at least 100 ranges are needed; the
        // median split keeps the total close to that (not thousands).
        let mut dir =
            FakeDirectory::with_numbers((0..10_000).map(|i| 1000 + i * 37 % 100_000), 100);
        let f = block_on(fetch_all(&mut dir, 100)).unwrap();
        assert_eq!(f.entities.len(), 10_000);
        assert!(f.entity_calls < 600, "calls: {}", f.entity_calls);
    }

    #[test]
    fn clustered_duplicates_at_the_low_end_still_split() {
        // Many results share the lowest number (but fewer than the cap).
        let mut nums = vec![5000; 90];
        nums.extend(5001..5200);
        let mut dir = FakeDirectory::with_numbers(nums, 100);
        let f = block_on(fetch_all(&mut dir, 100)).unwrap();
        assert_eq!(f.entities.len(), 90 + 199);
    }

    #[test]
    fn capped_single_number_is_an_error() {
        let mut dir = FakeDirectory::with_numbers(vec![7; 100], 100);
        match block_on(fetch_all(&mut dir, 100)) {
            Err(FetchError::Incomplete(IncompleteError::CappedSingleNumber {
                number: 7, ..
            })) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn out_of_range_answer_is_an_error() {
        let mut p = RangePlanner::new(10);
        let r = NumberRange { lo: 0, hi: 10 };
        assert!(matches!(
            p.answer(r, &[Some(3), Some(10)]),
            Err(IncompleteError::OutOfRange { number: 10, .. })
        ));
        assert!(matches!(
            p.answer(r, &[None]),
            Err(IncompleteError::MissingNumber { .. })
        ));
    }

    #[test]
    fn a_failing_call_mid_way_is_reported_with_its_position() {
        let mut dir = FakeDirectory::with_numbers(0..1000, 100);
        dir.fail_entity_call = Some(4);
        match block_on(fetch_all(&mut dir, 100)) {
            Err(FetchError::Call {
                method: "EntitySearch",
                calls_before: 4,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn capped_groups_fall_back_to_ranges() {
        let mut dir = FakeDirectory::with_numbers(0..10, 100);
        dir.groups = (0..250)
            .map(|i| SourceGroup {
                name: format!("g{i}"),
                number: Some(2000 + i),
                expansions: vec![],
            })
            .collect();
        let f = block_on(fetch_all(&mut dir, 100)).unwrap();
        assert_eq!(f.groups.len(), 250);
        assert!(f.group_calls > 1);
    }
}
