//! Pixel merging: a row's intervals become at most one coloured run per pixel
//! column, so a row costs at most its width in rectangles however many
//! intervals it holds.
//!
//! Each column takes the key (a state, or a thread and its state) that covers
//! most of the column's time; ties go to the smaller key, so the result does
//! not depend on the order of the input. Adjacent columns with the same key
//! coalesce into one [`Segment`]. A column that no interval touches stays
//! empty; a column that one touches even for a nanosecond is drawn.
//!
//! The arithmetic is exact: time `t` sits at `t * width` in a scaled space in
//! which every column is `end` long, so no column is wider than another and
//! nothing is lost to rounding.
//!
//! A state that recurs often but briefly (a lock wait of 10µs every
//! millisecond, drawn at 1.25ms a column) loses every column it is in and
//! vanishes. [`merge_sorted_marked`] merges as [`merge_sorted`] does and
//! also names, per column, its *minority*: of the keys the caller wants
//! marked, the one other than the column's own that covers most of it
//! (ties to the smaller key), however little. A minority is left out where
//! a column next to it is drawn with that key: the state is visible within
//! a pixel already. So every column where a bar of at least two columns
//! begins or ends inside the pixel (such a bar covers a whole column next to
//! each of its ends) stays unmarked, and only keys whose intervals are
//! shorter than two columns are ever marked. Adjacent columns with the same
//! minority coalesce into one [`Segment`], as colours do.

use crate::time::Time;

/// Maps the times `[0, end)` of a run onto `width` pixel columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Columns {
    end: u64,
    width: u32,
}

impl Columns {
    /// `end` and `width` are raised to at least 1.
    pub(crate) fn new(end: Time, width: u32) -> Columns {
        Columns {
            end: end.as_nanos().max(1),
            width: width.max(1),
        }
    }

    /// How many columns there are.
    pub(crate) fn width(self) -> u32 {
        self.width
    }

    /// The pixel edge at `t`, from 0 to `width`, rounded to the nearest.
    pub(crate) fn edge(self, t: Time) -> u32 {
        ((self.scaled(t) + self.unit() / 2) / self.unit()) as u32
    }

    /// The time at the left edge of column `x` (rounded down); `width` gives
    /// the end.
    pub(crate) fn time(self, x: u32) -> Time {
        let x = u128::from(x.min(self.width));
        Time((x * u128::from(self.end) / u128::from(self.width)) as u64)
    }

    /// The first and the last column `[start, end)` touches; `None` when it
    /// is empty or past the end.
    pub(crate) fn touched(self, start: Time, end: Time) -> Option<(u32, u32)> {
        self.span(start, end).map(|touch| (touch.first, touch.last))
    }

    /// `t` (clamped to the end) in the scaled space.
    fn scaled(self, t: Time) -> u128 {
        u128::from(t.as_nanos().min(self.end)) * u128::from(self.width)
    }

    /// The scaled length of one column.
    fn unit(self) -> u128 {
        u128::from(self.end)
    }

    /// The columns `[start, end)` touches, with how much of the first and of
    /// the last it covers (in scaled units); `None` when it is empty or past
    /// the end.
    fn span(self, start: Time, end: Time) -> Option<Touch> {
        let (s, e) = (self.scaled(start), self.scaled(end));
        if e <= s {
            return None;
        }
        let unit = self.unit();
        let first = s / unit;
        let last = (e - 1) / unit;
        Some(if first == last {
            Touch {
                first: first as u32,
                last: last as u32,
                head: e - s,
                tail: 0,
            }
        } else {
            Touch {
                first: first as u32,
                last: last as u32,
                head: (first + 1) * unit - s,
                tail: e - last * unit,
            }
        })
    }
}

/// The columns one interval touches. Columns strictly between `first` and
/// `last` are covered whole.
struct Touch {
    first: u32,
    last: u32,
    /// Coverage of `first` (all of the interval when `first == last`).
    head: u128,
    /// Coverage of `last` when it differs from `first`.
    tail: u128,
}

/// Adjacent pixel columns `[x0, x1)` drawn with one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment<K> {
    /// First column.
    pub(crate) x0: u32,
    /// One past the last column.
    pub(crate) x1: u32,
    /// What covers them.
    pub(crate) key: K,
}

/// Appends columns `[x0, x1)` of `key`, extending the last segment when it
/// ends at `x0` with the same key.
fn push<K: Eq>(out: &mut Vec<Segment<K>>, x0: u32, x1: u32, key: K) {
    if let Some(last) = out.last_mut() {
        if last.x1 == x0 && last.key == key {
            last.x1 = x1;
            return;
        }
    }
    out.push(Segment { x0, x1, key });
}

/// Merges intervals `(start, end, key)` that come in time order and do not
/// overlap, as one thread's or one CPU's do. Runs in one pass, with memory
/// for one column of keys.
pub(crate) fn merge_sorted<K: Copy + Ord>(
    intervals: impl IntoIterator<Item = (Time, Time, K)>,
    columns: Columns,
) -> Vec<Segment<K>> {
    merge_sorted_marked(intervals, columns, |_| false).colors
}

/// What [`merge_sorted_marked`] gives: the colour of each column, and the
/// minority marked in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Marked<K> {
    /// Each column's key, as [`merge_sorted`] gives them.
    pub(crate) colors: Vec<Segment<K>>,
    /// Columns whose largest minority among the keys `marked` selects is
    /// not drawn in them nor next to them, with that key.
    pub(crate) minorities: Vec<Segment<K>>,
}

/// [`merge_sorted`], with the minorities `marked` selects (see the module
/// documentation). Still one pass over the intervals; the minorities cost a
/// look at each column's neighbours afterwards, at most one per column.
pub(crate) fn merge_sorted_marked<K: Copy + Ord>(
    intervals: impl IntoIterator<Item = (Time, Time, K)>,
    columns: Columns,
    marked: impl Fn(K) -> bool,
) -> Marked<K> {
    let mut merge = SortedMerge::new(columns, marked);
    for (start, end, key) in intervals {
        merge.add(start, end, key);
    }
    merge.finish()
}

/// [`merge_sorted_marked`] fed one interval at a time, so that a chart
/// can merge every row as the trace's intervals stream past, keeping no
/// list of them: its memory is the row's segments and one column.
pub(crate) struct SortedMerge<K, F> {
    columns: Columns,
    out: Vec<Segment<K>>,
    pending: Pending<K, F>,
}

impl<K: Copy + Ord, F: Fn(K) -> bool> SortedMerge<K, F> {
    /// An empty row over `columns`, marking the minorities `marked` selects.
    pub(crate) fn new(columns: Columns, marked: F) -> Self {
        SortedMerge {
            columns,
            out: Vec::new(),
            pending: Pending::new(marked),
        }
    }

    /// Adds `[start, end)` of `key`, which must not start before the end of
    /// the interval added last.
    pub(crate) fn add(&mut self, start: Time, end: Time, key: K) {
        let Some(touch) = self.columns.span(start, end) else {
            return;
        };
        let (out, pending) = (&mut self.out, &mut self.pending);
        pending.add(out, touch.first, key, touch.head);
        if touch.last > touch.first {
            if touch.last > touch.first + 1 {
                // The whole columns in between belong to this key alone.
                pending.close(out);
                push(out, touch.first + 1, touch.last, key);
            }
            pending.add(out, touch.last, key, touch.tail);
        }
    }

    /// The row's segments and its visible minorities.
    pub(crate) fn finish(mut self) -> Marked<K> {
        self.pending.close(&mut self.out);
        let minorities = visible_minorities(&self.out, &self.pending.minorities);
        Marked {
            colors: self.out,
            minorities,
        }
    }
}

/// The minorities `(column, key)`, in column order, whose key colours
/// neither the column before nor the one after in `colors`, coalesced.
fn visible_minorities<K: Copy + Eq>(
    colors: &[Segment<K>],
    minorities: &[(u32, K)],
) -> Vec<Segment<K>> {
    let key_at = |col: u32| {
        let i = colors.partition_point(|s| s.x1 <= col);
        colors.get(i).filter(|s| s.x0 <= col).map(|s| s.key)
    };
    let mut out = Vec::new();
    for &(col, key) in minorities {
        let before = col.checked_sub(1).and_then(key_at);
        if before != Some(key) && key_at(col + 1) != Some(key) {
            push(&mut out, col, col + 1, key);
        }
    }
    out
}

/// The column [`merge_sorted_marked`] is filling, how much of it each key
/// covers so far, and the minorities of the columns closed.
struct Pending<K, F> {
    col: Option<u32>,
    cover: Vec<(K, u128)>,
    /// Which keys a column's minority may be.
    marked: F,
    /// Per closed column with one, its largest marked minority.
    minorities: Vec<(u32, K)>,
}

impl<K: Copy + Ord, F: Fn(K) -> bool> Pending<K, F> {
    fn new(marked: F) -> Self {
        Pending {
            col: None,
            cover: Vec::new(),
            marked,
            minorities: Vec::new(),
        }
    }

    /// Adds `amount` of `key` to column `col`, closing the column before it.
    fn add(&mut self, out: &mut Vec<Segment<K>>, col: u32, key: K, amount: u128) {
        if self.col != Some(col) {
            debug_assert!(
                self.col.is_none_or(|prev| prev < col),
                "intervals out of order"
            );
            self.close(out);
            self.col = Some(col);
        }
        match self.cover.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 += amount,
            None => self.cover.push((key, amount)),
        }
    }

    /// Emits the open column, if any, with the key that covers most of it,
    /// and notes its largest marked minority.
    fn close(&mut self, out: &mut Vec<Segment<K>>) {
        let most = |a: &(K, u128), b: &(K, u128)| a.1.cmp(&b.1).then(b.0.cmp(&a.0));
        let best = self.cover.iter().copied().max_by(most);
        if let (Some(col), Some((key, _))) = (self.col.take(), best) {
            push(out, col, col + 1, key);
            let minority = self
                .cover
                .iter()
                .copied()
                .filter(|&(k, _)| k != key && (self.marked)(k))
                .max_by(most);
            if let Some((minority, _)) = minority {
                self.minorities.push((col, minority));
            }
        }
        self.cover.clear();
    }
}

/// Merges intervals `(start, end, key)` in any order, overlapping or not, as
/// the threads of a row that stands for several threads do. Keys are indices
/// below `keys`; memory is one table of `width × keys` coverages.
pub(crate) fn merge_overlapping(
    intervals: impl IntoIterator<Item = (Time, Time, usize)>,
    columns: Columns,
    keys: usize,
) -> Vec<Segment<usize>> {
    let mut merge = OverlapMerge::new(columns, keys);
    for (start, end, key) in intervals {
        merge.add(start, end, key);
    }
    merge.finish()
}

/// [`merge_overlapping`] fed one interval at a time.
pub(crate) struct OverlapMerge {
    columns: Columns,
    keys: usize,
    /// Partial coverage of a column by a key.
    partial: Vec<u128>,
    /// A difference array of how many intervals cover a column whole.
    whole: Vec<i64>,
}

impl OverlapMerge {
    /// An empty row over `columns` with keys below `keys`.
    pub(crate) fn new(columns: Columns, keys: usize) -> Self {
        let width = columns.width() as usize;
        OverlapMerge {
            columns,
            keys,
            partial: vec![0; width * keys],
            whole: vec![0; (width + 1) * keys],
        }
    }

    /// The bytes one row's table takes.
    pub(crate) fn table_bytes(columns: Columns, keys: usize) -> usize {
        let width = columns.width() as usize;
        width * keys * 16 + (width + 1) * keys * 8
    }

    /// Adds `[start, end)` of `key`, in any order.
    pub(crate) fn add(&mut self, start: Time, end: Time, key: usize) {
        let keys = self.keys;
        assert!(key < keys, "key {key} out of range 0..{keys}");
        let Some(touch) = self.columns.span(start, end) else {
            return;
        };
        let (first, last) = (touch.first as usize, touch.last as usize);
        self.partial[first * keys + key] += touch.head;
        if last > first {
            self.partial[last * keys + key] += touch.tail;
            self.whole[(first + 1) * keys + key] += 1;
            self.whole[last * keys + key] -= 1;
        }
    }

    /// Each column's key, coalesced into segments.
    pub(crate) fn finish(self) -> Vec<Segment<usize>> {
        let (keys, width) = (self.keys, self.columns.width() as usize);
        let unit = self.columns.unit();
        let mut running = vec![0i64; keys];
        let mut out = Vec::new();
        for col in 0..width {
            let mut best: Option<(usize, u128)> = None;
            for (key, running) in running.iter_mut().enumerate() {
                *running += self.whole[col * keys + key];
                let total = self.partial[col * keys + key] + *running as u128 * unit;
                if total > 0 && best.is_none_or(|(_, b)| total > b) {
                    best = Some((key, total));
                }
            }
            if let Some((key, _)) = best {
                push(&mut out, col as u32, col as u32 + 1, key);
            }
        }
        out
    }
}

/// How much of each pixel column items of a row cover, per item (a wait's
/// shade and target, say), in the order each first appears in a column:
/// what a bar's label needs of the intervals under it, in memory bounded by
/// the columns rather than by the intervals. Items come in time order.
pub(crate) struct ColumnCover<T> {
    columns: Columns,
    /// `(column, item, nanoseconds)`, by column.
    entries: Vec<(u32, T, u64)>,
}

impl<T: Copy + Eq> ColumnCover<T> {
    /// No cover yet, over `columns`.
    pub(crate) fn new(columns: Columns) -> Self {
        ColumnCover {
            columns,
            entries: Vec::new(),
        }
    }

    /// Adds `[start, end)` of `item`, which must not start in a column
    /// before the one the last interval added ended in.
    pub(crate) fn add(&mut self, start: Time, end: Time, item: T) {
        let Some((first, last)) = self.columns.touched(start, end) else {
            return;
        };
        for col in first..=last {
            let (t0, t1) = (self.columns.time(col), self.columns.time(col + 1));
            let amount = end
                .min(t1)
                .as_nanos()
                .saturating_sub(start.max(t0).as_nanos());
            if amount == 0 {
                continue;
            }
            let same = self
                .entries
                .iter_mut()
                .rev()
                .take_while(|(c, _, _)| *c == col)
                .find(|(_, i, _)| *i == item);
            match same {
                Some(entry) => entry.2 += amount,
                None => self.entries.push((col, item, amount)),
            }
        }
    }

    /// The cover of columns `[x0, x1)`, column by column, each column's
    /// items in the order they first appeared in it.
    pub(crate) fn within(&self, x0: u32, x1: u32) -> &[(u32, T, u64)] {
        let from = self.entries.partition_point(|e| e.0 < x0);
        let to = self.entries.partition_point(|e| e.0 < x1);
        &self.entries[from..to]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seg<K>(x0: u32, x1: u32, key: K) -> Segment<K> {
        Segment { x0, x1, key }
    }

    fn t(n: u64) -> Time {
        Time(n)
    }

    #[test]
    fn long_intervals_map_onto_their_columns() {
        // 100ns over 10 columns: 10ns a column.
        let cols = Columns::new(t(100), 10);
        let out = merge_sorted([(t(0), t(30), 'a'), (t(30), t(100), 'b')], cols);
        assert_eq!(out, vec![seg(0, 3, 'a'), seg(3, 10, 'b')]);
    }

    #[test]
    fn a_column_takes_the_key_that_covers_most_of_it() {
        let cols = Columns::new(t(100), 10);
        // Column 1 (10..20): a covers 4ns, b 6ns.
        let out = merge_sorted([(t(0), t(14), 'a'), (t(14), t(40), 'b')], cols);
        assert_eq!(out, vec![seg(0, 1, 'a'), seg(1, 4, 'b')]);
        // Split 5/5: the smaller key wins, whichever comes first.
        let out = merge_sorted([(t(10), t(15), 'b'), (t(15), t(20), 'a')], cols);
        assert_eq!(out, vec![seg(1, 2, 'a')]);
    }

    #[test]
    fn many_tiny_intervals_become_one_segment_per_run_of_columns() {
        // 1,000,000 intervals of 1ns alternating a (2 of 3) and b (1 of 3),
        // over 100 columns: a dominates every column, one segment.
        let cols = Columns::new(t(1_000_000), 100);
        let intervals =
            (0..1_000_000u64).map(|i| (t(i), t(i + 1), if i % 3 == 2 { 'b' } else { 'a' }));
        assert_eq!(merge_sorted(intervals, cols), vec![seg(0, 100, 'a')]);
    }

    #[test]
    fn gaps_stay_empty_and_a_touch_is_enough_to_draw() {
        let cols = Columns::new(t(100), 10);
        let out = merge_sorted(
            [
                (t(0), t(10), 'a'),
                (t(55), t(56), 'b'),
                (t(90), t(100), 'a'),
            ],
            cols,
        );
        assert_eq!(out, vec![seg(0, 1, 'a'), seg(5, 6, 'b'), seg(9, 10, 'a')]);
    }

    #[test]
    fn intervals_past_the_end_are_clipped_and_empty_ones_skipped() {
        let cols = Columns::new(t(100), 10);
        let out = merge_sorted(
            [
                (t(5), t(5), 'z'),
                (t(80), t(500), 'a'),
                (t(200), t(300), 'b'),
            ],
            cols,
        );
        assert_eq!(out, vec![seg(8, 10, 'a')]);
    }

    #[test]
    fn runs_shorter_than_the_width_spread_over_columns() {
        // 4ns over 8 columns: each nanosecond is two columns.
        let cols = Columns::new(t(4), 8);
        let out = merge_sorted(
            [(t(0), t(1), 'a'), (t(1), t(3), 'b'), (t(3), t(4), 'a')],
            cols,
        );
        assert_eq!(out, vec![seg(0, 2, 'a'), seg(2, 6, 'b'), seg(6, 8, 'a')]);
    }

    #[test]
    fn edges_round_to_the_nearest_pixel() {
        let cols = Columns::new(t(1000), 10);
        assert_eq!(cols.edge(t(0)), 0);
        assert_eq!(cols.edge(t(5000)), 10);
        assert_eq!(cols.edge(t(1000)), 10);
        assert_eq!(cols.edge(t(149)), 1);
        assert_eq!(cols.edge(t(150)), 2);
        // Huge times do not overflow.
        let cols = Columns::new(Time::MAX, 1600);
        assert_eq!(cols.edge(Time::MAX), 1600);
        assert_eq!(cols.edge(Time(u64::MAX / 2)), 800);
    }

    #[test]
    fn overlapping_intervals_sum_per_key() {
        let cols = Columns::new(t(100), 10);
        // Two threads: both sleep (key 1) over 0..100 except one runs (key 0)
        // 0..50; in 0..50 key 0 and key 1 tie: the smaller key wins.
        let out = merge_overlapping(
            [(t(0), t(50), 0), (t(50), t(100), 1), (t(0), t(100), 1)],
            cols,
            3,
        );
        assert_eq!(out, vec![seg(0, 5, 0), seg(5, 10, 1)]);
        // Three threads: key 2 covers more in total.
        let out = merge_overlapping(
            [(t(0), t(100), 2), (t(0), t(100), 0), (t(20), t(100), 2)],
            cols,
            3,
        );
        assert_eq!(out, vec![seg(0, 2, 0), seg(2, 10, 2)]);
    }

    #[test]
    fn a_brief_marked_key_is_the_minority_of_the_columns_it_hides_in() {
        // 10 columns of 100ns; 'a' runs 90ns and 'l' waits 10ns in each,
        // 'z' 1ns in column 3 but is not marked.
        let cols = Columns::new(t(1000), 10);
        let mut intervals = Vec::new();
        for k in 0..10 {
            intervals.push((t(100 * k), t(100 * k + 90), 'a'));
            if k == 3 {
                intervals.push((t(390), t(391), 'z'));
                intervals.push((t(391), t(400), 'l'));
            } else {
                intervals.push((t(100 * k + 90), t(100 * k + 100), 'l'));
            }
        }
        let marked = merge_sorted_marked(intervals.iter().copied(), cols, |k| k != 'a');
        assert_eq!(marked.colors, vec![seg(0, 10, 'a')]);
        assert_eq!(marked.minorities, vec![seg(0, 10, 'l')]);
        // The largest marked minority wins: 'z' (1ns) loses to 'l' (9ns)
        // in column 3, and wins when 'l' is not marked.
        let marked = merge_sorted_marked(intervals.iter().copied(), cols, |k| k == 'z');
        assert_eq!(marked.minorities, vec![seg(3, 4, 'z')]);
        // Unmarked: the colours of merge_sorted, no minorities.
        let marked = merge_sorted_marked(intervals.iter().copied(), cols, |_| false);
        assert_eq!(marked.colors, merge_sorted(intervals, cols));
        assert!(marked.minorities.is_empty());
    }

    #[test]
    fn where_a_long_bar_begins_inside_a_column_it_is_not_a_minority() {
        let cols = Columns::new(t(100), 10);
        // 'l' from 14 to 60: column 1 is mostly 'a', but column 2 is 'l'.
        let marked = merge_sorted_marked(
            [
                (t(0), t(14), 'a'),
                (t(14), t(60), 'l'),
                (t(60), t(100), 'a'),
            ],
            cols,
            |k| k == 'l',
        );
        assert_eq!(
            marked.colors,
            vec![seg(0, 1, 'a'), seg(1, 6, 'l'), seg(6, 10, 'a')]
        );
        assert!(marked.minorities.is_empty());
        // 'l' 5ns across columns 1 and 2, lost in both: both marked, but in
        // column 2 'k' ties with it (2ns each) and is the smaller key.
        let marked = merge_sorted_marked(
            [
                (t(0), t(17), 'a'),
                (t(17), t(22), 'l'),
                (t(22), t(24), 'k'),
                (t(24), t(100), 'a'),
            ],
            cols,
            |k| k != 'a',
        );
        assert_eq!(marked.colors, vec![seg(0, 10, 'a')]);
        assert_eq!(marked.minorities, vec![seg(1, 2, 'l'), seg(2, 3, 'k')]);
    }

    /// Sorted, non-overlapping intervals with small keys, some with gaps.
    fn sorted_intervals() -> impl Strategy<Value = Vec<(Time, Time, usize)>> {
        prop::collection::vec((0u64..40, 1u64..60, 0usize..4), 0..40).prop_map(|steps| {
            let mut now = 0;
            steps
                .into_iter()
                .map(|(gap, len, key)| {
                    let start = now + if gap < 30 { 0 } else { gap };
                    now = start + len;
                    (t(start), t(now), key)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn both_merges_agree_on_sorted_input(
            intervals in sorted_intervals(),
            end in 1u64..2500,
            width in 1u32..90,
        ) {
            let cols = Columns::new(t(end), width);
            let a = merge_sorted(intervals.iter().copied(), cols);
            let b = merge_overlapping(intervals.iter().copied(), cols, 4);
            prop_assert_eq!(&a, &b);
            // Segments are ordered, disjoint, inside the width and coalesced.
            for pair in a.windows(2) {
                prop_assert!(pair[0].x1 <= pair[1].x0);
                prop_assert!(pair[0].x1 < pair[1].x0 || pair[0].key != pair[1].key);
            }
            for s in &a {
                prop_assert!(s.x0 < s.x1 && s.x1 <= width);
            }
        }

        #[test]
        fn minorities_are_hidden_keys_of_columns_drawn(
            intervals in sorted_intervals(),
            end in 1u64..2500,
            width in 1u32..90,
        ) {
            let cols = Columns::new(t(end), width);
            let plain = merge_sorted(intervals.iter().copied(), cols);
            let marked = merge_sorted_marked(intervals.iter().copied(), cols, |k| k % 2 == 1);
            prop_assert_eq!(&marked.colors, &plain);
            let key_at = |x: u32| plain.iter().find(|s| s.x0 <= x && x < s.x1).map(|s| s.key);
            for s in &marked.minorities {
                prop_assert!(s.key % 2 == 1);
                for x in s.x0..s.x1 {
                    prop_assert!(key_at(x).is_some());
                    prop_assert!(key_at(x) != Some(s.key));
                    prop_assert!(x == 0 || key_at(x - 1) != Some(s.key));
                    prop_assert!(key_at(x + 1) != Some(s.key));
                }
            }
            for pair in marked.minorities.windows(2) {
                prop_assert!(pair[0].x1 < pair[1].x0 || pair[0].key != pair[1].key);
            }
        }

        #[test]
        fn the_overlapping_merge_ignores_input_order(
            intervals in sorted_intervals(),
            end in 1u64..2500,
            width in 1u32..90,
        ) {
            let cols = Columns::new(t(end), width);
            let mut reversed = intervals.clone();
            reversed.reverse();
            prop_assert_eq!(
                merge_overlapping(intervals, cols, 4),
                merge_overlapping(reversed, cols, 4)
            );
        }
    }
}
