//! Where people may sit: the wheelchair-space rule, the no-lonely-seat rule and the
//! best-available search, as plain methods on the [`SeatMap`] (so the show actor decides them
//! in the same message as the hold, and two customers asking at once never get the same
//! seats). Unit-tested without an actix System.
use super::seat_map::{SeatMap, SeatState};
use crate::domain::SeatKind;

/// The most seats "find me N seats" looks for (as many as one hold may have).
pub const MAX_BEST: usize = crate::domain::MAX_SEATS_PER_HOLD;

/// Why seats picked by hand may not be held as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementRefusal {
    /// These are wheelchair spaces and the customer did not say they need one.
    WheelchairSpace(Vec<String>),
    /// Holding these would leave this seat empty on its own, and the row had another way.
    LonelySeat(String),
}

/// What "find me N seats" found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BestSeats {
    /// One group, or two when no row had N side by side.
    pub groups: Vec<Vec<usize>>,
}

impl BestSeats {
    pub fn seats(&self) -> Vec<usize> {
        self.groups.iter().flatten().copied().collect()
    }

    pub fn split(&self) -> bool {
        self.groups.len() > 1
    }
}

impl SeatMap {
    fn is_free(&self, seat: usize) -> bool {
        self.states()[seat] == SeatState::Free
    }

    /// The wheelchair rule: a wheelchair space is held only for a customer who needs one.
    pub fn check_wheelchair(&self, seats: &[usize], wheelchair: bool) -> Result<(), PlacementRefusal> {
        let spaces: Vec<usize> =
            seats.iter().copied().filter(|&i| self.layout().kinds[i] == SeatKind::Wheelchair).collect();
        if spaces.is_empty() || wheelchair {
            Ok(())
        } else {
            Err(PlacementRefusal::WheelchairSpace(self.labels(&spaces)))
        }
    }

    /// A standard seat that would be left empty on its own, beside `taking`, if `taking`
    /// (free seats) were held: its neighbours in its run of seats are taken (or about to be)
    /// or the end of the run (a row's end, an aisle, a gap). A seat already alone before is
    /// not this selection's doing, and wheelchair spaces and companion seats are not
    /// counted (they are sold on their own terms).
    pub fn lonely_seat_after(&self, taking: &[usize]) -> Option<usize> {
        let layout = self.layout();
        let taken = |i: usize| !self.is_free(i) || taking.contains(&i);
        for &t in taking {
            let (row, _) = layout.places[t];
            let Some(block) = layout.blocks[row].iter().find(|b| b.contains(&t)) else { continue };
            let neighbours = [t.checked_sub(1), Some(t + 1)];
            for n in neighbours.into_iter().flatten().filter(|n| block.contains(n)) {
                if taken(n) || layout.kinds[n] != SeatKind::Standard {
                    continue;
                }
                let left_closed = n == block.start || taken(n - 1);
                let right_closed = n + 1 == block.end || taken(n + 1);
                if left_closed && right_closed {
                    return Some(n);
                }
            }
        }
        None
    }

    /// The no-lonely-seat rule for seats picked by hand: refused, naming the seat, when
    /// holding them would leave a seat alone and the row had a way to seat as many people
    /// side by side without doing so.
    pub fn check_lonely(&self, seats: &[usize]) -> Result<(), PlacementRefusal> {
        let Some(lonely) = self.lonely_seat_after(seats) else { return Ok(()) };
        let row = self.layout().places[lonely].0;
        let in_row = seats.iter().filter(|&&i| self.layout().places[i].0 == row).count();
        if self.windows(row, in_row, None, false).any(|w| self.lonely_seat_after(&w).is_none()) {
            Err(PlacementRefusal::LonelySeat(self.labels(&[lonely]).remove(0)))
        } else {
            Ok(())
        }
    }

    /// Every run of `n` free seats side by side in `row`, of `category` if given, and of
    /// standard seats (or, for a customer who needs one, including a wheelchair space).
    fn windows(
        &self,
        row: usize,
        n: usize,
        category: Option<usize>,
        wheelchair: bool,
    ) -> impl Iterator<Item = Vec<usize>> + '_ {
        let layout = self.layout();
        layout.blocks[row]
            .iter()
            .flat_map(move |b| (b.start..b.end.saturating_sub(n.saturating_sub(1))).map(move |s| s..s + n))
            .filter(move |_| n > 0)
            .filter(move |w| {
                w.clone().all(|i| {
                    let kind_ok = match layout.kinds[i] {
                        SeatKind::Standard => true,
                        SeatKind::Wheelchair | SeatKind::Companion => wheelchair,
                    };
                    self.is_free(i) && kind_ok && category.is_none_or(|c| layout.seats[i].1 == c)
                })
            })
            .map(|w| w.collect())
    }

    /// How good a group of seats is (lower is better): rows about two thirds of the way
    /// back are best (not too close to the screen), then the middle of the row.
    fn score(&self, seats: &[usize]) -> (usize, usize, usize) {
        let layout = self.layout();
        let (row, first) = layout.places[seats[0]];
        let last = layout.places[seats[seats.len() - 1]].1;
        let rows = layout.rows.len();
        let ideal = (rows * 2).saturating_sub(1) / 3;
        // Twice the distances, to stay in whole numbers.
        let width = layout.cells[row].len();
        let centre_off = (first + last).abs_diff(width.saturating_sub(1));
        let row_off = 2 * row.abs_diff(ideal) + if row < ideal { 1 } else { 0 };
        (row_off * 3 + centre_off, row, first)
    }

    /// The best run of `n` free seats side by side, apart from `beside` (a group already
    /// chosen) and leaving no seat alone with it; with a wheelchair space in it if `wheelchair`.
    fn best_group(&self, n: usize, category: Option<usize>, wheelchair: bool, beside: &[usize]) -> Option<Vec<usize>> {
        let kinds = &self.layout().kinds;
        (0..self.layout().rows.len())
            .flat_map(|row| self.windows(row, n, category, wheelchair))
            .filter(|w| w.iter().all(|i| !beside.contains(i)))
            .filter(|w| !wheelchair || w.iter().any(|&i| kinds[i] == SeatKind::Wheelchair))
            .filter(|w| {
                let both: Vec<usize> = beside.iter().chain(w.iter()).copied().collect();
                self.lonely_seat_after(&both).is_none()
            })
            .min_by_key(|w| self.score(w))
    }

    /// "Find me N seats": N free seats side by side in one row, as central as possible and
    /// not too close to the screen, never leaving a seat alone; when no row has them, the
    /// best split into two groups (as large a first group as fits). Wheelchair spaces and
    /// companion seats are offered only to a customer who needs a wheelchair space (and
    /// then a wheelchair space is among them). None when nothing fits.
    pub fn find_best(&self, n: usize, category: Option<usize>, wheelchair: bool) -> Option<BestSeats> {
        if n == 0 || n > MAX_BEST {
            return None;
        }
        if let Some(g) = self.best_group(n, category, wheelchair, &[]) {
            return Some(BestSeats { groups: vec![g] });
        }
        for first in (n.div_ceil(2)..n).rev() {
            let Some(a) = self.best_group(first, category, wheelchair, &[]) else { continue };
            if let Some(b) = self.best_group(n - first, category, false, &a) {
                return Some(BestSeats { groups: vec![a, b] });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::seat_map::{Category, HoldStatus, HoldTerms, Layout, Spot};
    use crate::domain::{Client, LayoutText, SeatLabel};
    use chrono::{Duration, Utc};
    use std::sync::Arc;

    /// A seat map of a layout written as text (categories S and P).
    fn map(rows: &str) -> SeatMap {
        let text = LayoutText::parse(&format!("S = Standard 10\nP = Premium 15\n{rows}")).unwrap();
        let letters: Vec<char> = text.categories.iter().map(|c| c.letter).collect();
        let categories = text
            .categories
            .iter()
            .map(|c| Category { code: c.name.to_lowercase(), name: c.name.clone(), price_cents: c.price_cents })
            .collect();
        let rows: Vec<(String, Vec<Spot>)> =
            text.rows.iter().map(|r| (r.label.clone(), Spot::parse_row(&r.pattern(), &letters, 0))).collect();
        SeatMap::new(Arc::new(Layout::with_spots(categories, &rows)))
    }

    fn idx(map: &SeatMap, seats: &[&str]) -> Vec<usize> {
        seats.iter().map(|s| map.layout().seat_index(&SeatLabel::parse(s).unwrap()).unwrap()).collect()
    }

    fn take(map: &mut SeatMap, id: &str, seats: &[&str]) {
        let seats = idx(map, seats);
        let now = Utc::now();
        let terms =
            HoldTerms { placed_at: now, expires_at: now + Duration::minutes(8), key: None, client: Client::default() };
        map.place_hold(id, seats, terms, HoldStatus::Active);
    }

    fn labels(map: &SeatMap, best: Option<BestSeats>) -> Vec<Vec<String>> {
        best.map(|b| b.groups.iter().map(|g| map.labels(g)).collect()).unwrap_or_default()
    }

    #[test]
    fn layout_numbers_seats_along_the_row_across_aisles() {
        let m = map("A: .SS_WC_S\n");
        let l = m.layout();
        assert_eq!(m.labels(&[0, 1, 2, 3, 4]), ["A1", "A2", "A3", "A4", "A5"]);
        assert_eq!(l.kinds[2], SeatKind::Wheelchair);
        assert_eq!(l.kinds[3], SeatKind::Companion);
        assert_eq!(l.blocks[0], vec![0..2, 2..4, 4..5]);
        assert_eq!(l.places[4], (0, 7));
    }

    #[test]
    fn a_wheelchair_space_is_held_only_for_who_needs_one() {
        let m = map("A: WC_SSSS\n");
        assert_eq!(
            m.check_wheelchair(&idx(&m, &["A1", "A2"]), false),
            Err(PlacementRefusal::WheelchairSpace(vec!["A1".into()]))
        );
        assert_eq!(m.check_wheelchair(&idx(&m, &["A1", "A2"]), true), Ok(()));
        assert_eq!(m.check_wheelchair(&idx(&m, &["A2", "A3"]), false), Ok(()), "a companion seat is anyone's");
    }

    #[test]
    fn a_seat_left_alone_at_a_row_end_an_aisle_or_a_taken_seat_is_refused() {
        let mut m = map("A: SSSS_SSSS\nB: SSSSSS\n");
        assert_eq!(m.check_lonely(&idx(&m, &["A2", "A3"])), Err(PlacementRefusal::LonelySeat("A1".into())));
        assert_eq!(m.check_lonely(&idx(&m, &["A6", "A7"])), Err(PlacementRefusal::LonelySeat("A5".into())));
        assert_eq!(m.check_lonely(&idx(&m, &["A1", "A2", "A3"])), Ok(()), "any three of a block of four leave one");
        assert_eq!(m.check_lonely(&idx(&m, &["A1", "A2", "A3", "A4"])), Ok(()));
        take(&mut m, "h", &["B1"]);
        assert_eq!(m.check_lonely(&idx(&m, &["B3", "B4"])), Err(PlacementRefusal::LonelySeat("B2".into())));
        assert_eq!(m.check_lonely(&idx(&m, &["B2", "B3"])), Ok(()));
        assert_eq!(m.check_lonely(&idx(&m, &["B4"])), Ok(()), "two seats on each side stay together");
    }

    #[test]
    fn filling_a_row_or_having_no_other_choice_is_allowed() {
        let mut m = map("A: SSSS\nB: SSS\n");
        take(&mut m, "h", &["A1", "A2"]);
        assert_eq!(m.check_lonely(&idx(&m, &["A3", "A4"])), Ok(()), "the row is full");
        assert_eq!(m.check_lonely(&idx(&m, &["B1", "B2"])), Ok(()), "any two of three seats leave one");
        assert_eq!(m.check_lonely(&idx(&m, &["B2"])), Err(PlacementRefusal::LonelySeat("B1".into())));
    }

    #[test]
    fn a_wheelchair_space_or_companion_seat_left_alone_is_not_a_lonely_seat() {
        let m = map("A: WSS\nB: SSCW\n");
        assert_eq!(m.check_lonely(&idx(&m, &["A2", "A3"])), Ok(()));
        assert_eq!(m.check_lonely(&idx(&m, &["B1", "B2"])), Ok(()));
    }

    #[test]
    fn best_seats_are_central_and_not_at_the_front() {
        let m = map("A: SSS_SSSSSS_SSS\nB: SSS_SSSSSS_SSS\nC: SSS_SSSSSS_SSS\nD: SSS_SSSSSS_SSS\nE: SSS_SSSSSS_SSS\n");
        assert_eq!(labels(&m, m.find_best(2, None, false)), [["D6", "D7"]]);
        // D5-D8 would leave D4 and D9 alone by the aisles.
        assert_eq!(labels(&m, m.find_best(4, None, false)), [["D4", "D5", "D6", "D7"]]);
        assert_eq!(labels(&m, m.find_best(6, None, false)), [["D4", "D5", "D6", "D7", "D8", "D9"]]);
    }

    #[test]
    fn best_seats_never_leave_a_seat_alone() {
        let mut m = map("A: SSSSSSSS\n");
        take(&mut m, "h", &["A4", "A5"]);
        // Three together: A1-A3 or A6-A8 (A2-A4 would leave A1 alone, and so on).
        let got = labels(&m, m.find_best(3, None, false));
        assert!(got == [["A1", "A2", "A3"]] || got == [["A6", "A7", "A8"]], "{got:?}");
        take(&mut m, "g", &["A1", "A2", "A3"]);
        assert_eq!(labels(&m, m.find_best(2, None, false)), Vec::<Vec<String>>::new(), "A6-A7 or A7-A8 leave one");
        assert_eq!(labels(&m, m.find_best(1, None, false)), [["A6"]], "A7 would leave A6 and A8 alone");
    }

    #[test]
    fn best_seats_keep_to_a_category_and_away_from_wheelchair_spaces() {
        let m = map("A: SSSS\nB: PPPP\nC: WCSS\n");
        assert_eq!(labels(&m, m.find_best(2, Some(1), false)), [["B1", "B2"]], "B2-B3 would leave B1 alone");
        assert_eq!(labels(&m, m.find_best(4, Some(0), false)), [["A1", "A2", "A3", "A4"]]);
        let wheel = labels(&m, m.find_best(2, None, true));
        assert_eq!(wheel, [["C1", "C2"]], "a wheelchair space and its companion seat");
        let m = map("A: WCSS\n");
        assert_eq!(labels(&m, m.find_best(3, None, false)), Vec::<Vec<String>>::new());
    }

    #[test]
    fn when_no_row_fits_the_group_is_split_in_two() {
        let mut m = map("A: SSS\nB: SSS_SSS\n");
        let best = m.find_best(4, None, false).unwrap();
        assert!(best.split());
        assert_eq!(best.groups.iter().map(Vec::len).collect::<Vec<_>>(), [3, 1]);
        take(&mut m, "h", &["A1", "A2", "A3", "B1", "B2", "B3"]);
        assert_eq!(labels(&m, m.find_best(4, None, false)), Vec::<Vec<String>>::new(), "three seats left");
    }

    #[test]
    fn best_of_zero_or_more_than_a_hold_finds_nothing() {
        let m = map("A: SSSSSSSSSSSSSSSSSS\n");
        assert!(m.find_best(0, None, false).is_none());
        assert!(m.find_best(MAX_BEST + 1, None, false).is_none());
        assert_eq!(m.find_best(MAX_BEST, None, false).unwrap().seats().len(), MAX_BEST);
    }
}
