//! Window planning: contiguity, horizons, bucket alignment, halves (with property tests).

use super::*;
use chrono::TimeZone;
use proptest::prelude::*;

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 14, h, m, 0).unwrap()
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

#[test]
fn windows_cannot_be_inverted() {
    assert!(InstantWindow::new(t(12, 0), t(11, 0)).is_none());
    assert!(InstantWindow::new(t(12, 0), t(12, 0)).is_none());
    // both ends are floored to the minute: 12:00:30 .. 12:00:50 is empty
    assert!(InstantWindow::new(
        t(12, 0) + Duration::seconds(30),
        t(12, 0) + Duration::seconds(50)
    )
    .is_none());
    assert!(DateWindow::new(d(2024, 3, 2), d(2024, 3, 1)).is_none());
    assert_eq!(
        DateWindow::new(d(2024, 3, 1), d(2024, 3, 1))
            .unwrap()
            .days(),
        1
    );
}

#[test]
fn first_poll_and_lookback() {
    let w = plan_instants(
        None,
        t(0, 0),
        t(13, 5),
        Duration::hours(2),
        Duration::hours(6),
    );
    assert_eq!(w.len(), 3);
    assert_eq!((w[0].start(), w[2].end()), (t(0, 0), t(13, 5)));
    let w = plan_instants(
        Some(t(13, 5)),
        t(0, 0),
        t(17, 0),
        Duration::hours(2),
        Duration::hours(6),
    );
    assert_eq!(w, vec![InstantWindow::new(t(11, 5), t(17, 0)).unwrap()]);
    // nothing new yet: the lookback is still re-read
    let w = plan_instants(
        Some(t(17, 0)),
        t(0, 0),
        t(17, 0),
        Duration::hours(2),
        Duration::hours(6),
    );
    assert_eq!(w, vec![InstantWindow::new(t(15, 0), t(17, 0)).unwrap()]);
}

#[test]
fn halves_are_contiguous() {
    let w = InstantWindow::new(t(10, 0), t(10, 5)).unwrap();
    let (a, b) = w.halves().unwrap();
    assert_eq!(
        (a.start(), a.end(), b.start(), b.end()),
        (t(10, 0), t(10, 2), t(10, 2), t(10, 5))
    );
    assert!(InstantWindow::new(t(10, 0), t(10, 1))
        .unwrap()
        .halves()
        .is_none());
    let dw = DateWindow::new(d(2024, 3, 1), d(2024, 3, 3)).unwrap();
    let (a, b) = dw.halves(Buckets::Days).unwrap();
    assert_eq!(
        (a.start(), a.end(), b.start(), b.end()),
        (d(2024, 3, 1), d(2024, 3, 1), d(2024, 3, 2), d(2024, 3, 3))
    );
    assert!(DateWindow::new(d(2024, 3, 1), d(2024, 3, 1))
        .unwrap()
        .halves(Buckets::Days)
        .is_none());
    // weeks: March 2024 starts on a Friday; [Mon 4, Sun 24] is three weeks
    let weeks = DateWindow::new(d(2024, 3, 4), d(2024, 3, 24)).unwrap();
    let (a, b) = weeks.halves(Buckets::Weeks).unwrap();
    assert_eq!(
        (a.start(), a.end(), b.start(), b.end()),
        (
            d(2024, 3, 4),
            d(2024, 3, 10),
            d(2024, 3, 11),
            d(2024, 3, 24)
        )
    );
    assert!(DateWindow::new(d(2024, 3, 4), d(2024, 3, 10))
        .unwrap()
        .halves(Buckets::Weeks)
        .is_none());
}

#[test]
fn date_polls_repull_the_horizon() {
    let today = d(2024, 3, 14);
    let w = plan_dates(Some(today), d(2024, 1, 1), today, 3, 1, Buckets::Days);
    assert_eq!(w.first().unwrap().start(), d(2024, 3, 11));
    assert_eq!(w.last().unwrap().end(), today);
    assert_eq!(w.len(), 4);
    // a gap since the checkpoint is covered too
    let w = plan_dates(
        Some(d(2024, 3, 1)),
        d(2024, 1, 1),
        today,
        3,
        7,
        Buckets::Days,
    );
    assert_eq!(w.first().unwrap().start(), d(2024, 3, 2));
    assert!(w.iter().all(|w| w.days() <= 7));
}

#[test]
fn buckets_are_never_cut() {
    let w = cut_dates(d(2024, 3, 13), d(2024, 3, 14), 1, Buckets::Weeks);
    assert_eq!(
        w,
        vec![DateWindow::new(d(2024, 3, 11), d(2024, 3, 17)).unwrap()]
    );
    let w = cut_dates(d(2024, 2, 10), d(2024, 4, 2), 40, Buckets::Months);
    assert_eq!(
        w.iter().map(|w| (w.start(), w.end())).collect::<Vec<_>>(),
        vec![
            (d(2024, 2, 1), d(2024, 2, 29)),
            (d(2024, 3, 1), d(2024, 3, 31)),
            (d(2024, 4, 1), d(2024, 4, 30))
        ]
    );
    let w = cut_dates(d(2024, 5, 10), d(2024, 5, 10), 1, Buckets::Quarters);
    assert_eq!(
        w,
        vec![DateWindow::new(d(2024, 4, 1), d(2024, 6, 30)).unwrap()]
    );
}

proptest! {
    #[test]
    fn instant_windows_tile_the_range(from in 0i64..100_000, len in 0i64..50_000, max in 1i64..2_000) {
        let a = t(0, 0) + Duration::minutes(from);
        let b = a + Duration::minutes(len);
        let w = cut_instants(a, b, Duration::minutes(max));
        prop_assert_eq!(w.len() as i64, (len + max - 1) / max);
        for pair in w.windows(2) {
            prop_assert_eq!(pair[0].end(), pair[1].start());
        }
        if let (Some(f), Some(l)) = (w.first(), w.last()) {
            prop_assert_eq!((f.start(), l.end()), (a, b));
        }
        prop_assert!(w.iter().all(|w| w.end() - w.start() <= Duration::minutes(max)));
    }

    #[test]
    fn cutting_a_window_keeps_its_span(len in 1i64..50_000, max in 1i64..2_000) {
        let w = InstantWindow::new(t(0, 0), t(0, 0) + Duration::minutes(len)).unwrap();
        let pieces = Window::Instants(w).cut_to(Duration::minutes(max));
        let spans: Vec<_> = pieces.iter().map(|p| match p {
            Window::Instants(p) => (p.start(), p.end()),
            Window::Dates(_) => unreachable!("an instant window stays one"),
        }).collect();
        prop_assert_eq!(spans.first().unwrap().0, w.start());
        prop_assert_eq!(spans.last().unwrap().1, w.end());
        for pair in spans.windows(2) {
            prop_assert_eq!(pair[0].1, pair[1].0);
        }
        prop_assert!(spans.iter().all(|(a, b)| *b - *a <= Duration::minutes(max)));
    }

    #[test]
    fn date_halves_hold_whole_buckets(from in 0i64..3_000, len in 0i64..400, level in 0usize..4) {
        let buckets = [Buckets::Days, Buckets::Weeks, Buckets::Months, Buckets::Quarters][level];
        let a = d(2020, 1, 1) + Duration::days(from);
        for w in cut_dates(a, a + Duration::days(len), 400, buckets) {
            if let Some((x, y)) = w.halves(buckets) {
                prop_assert_eq!((x.start(), x.end() + Duration::days(1), y.end()), (w.start(), y.start(), w.end()));
                prop_assert_eq!(buckets.floor(y.start()), y.start());
            } else {
                prop_assert_eq!(buckets.next(w.start()), w.end() + Duration::days(1), "only one bucket has no halves");
            }
        }
    }

    #[test]
    fn date_windows_tile_the_range(from in 0i64..3_000, len in 0i64..400, max in 1u32..40, level in 0usize..4) {
        let buckets = [Buckets::Days, Buckets::Weeks, Buckets::Months, Buckets::Quarters][level];
        let a = d(2020, 1, 1) + Duration::days(from);
        let b = a + Duration::days(len);
        let w = cut_dates(a, b, max, buckets);
        // from the bucket holding `a` to the end of the bucket holding `b`, not a day more
        prop_assert_eq!(w[0].start(), buckets.floor(a));
        prop_assert_eq!(w.last().unwrap().end(), buckets.next(buckets.floor(b)) - Duration::days(1));
        for pair in w.windows(2) {
            prop_assert_eq!(pair[0].end() + Duration::days(1), pair[1].start());
        }
        for win in &w {
            prop_assert_eq!(buckets.floor(win.start()), win.start());
            prop_assert_eq!(buckets.floor(win.end() + Duration::days(1)), win.end() + Duration::days(1));
            if buckets == Buckets::Days { prop_assert!(win.days() <= i64::from(max)); }
        }
    }
}

#[test]
fn a_window_that_cannot_be_split_is_named_for_what_it_is() {
    let minute = Window::Instants(InstantWindow::new(t(12, 0), t(12, 1)).unwrap());
    assert!(minute.halves(Buckets::Days).is_none());
    assert_eq!(
        minute.smallest(Buckets::Days),
        "a one-minute work-session window"
    );
    let day = Window::Dates(DateWindow::new(d(2024, 3, 1), d(2024, 3, 1)).unwrap());
    assert!(day.halves(Buckets::Days).is_none());
    assert_eq!(day.smallest(Buckets::Days), "a single day");
    let week = Window::Dates(DateWindow::new(d(2024, 3, 4), d(2024, 3, 10)).unwrap());
    assert!(week.halves(Buckets::Weeks).is_none());
    assert_eq!(
        week.smallest(Buckets::Weeks),
        "a single week (one weekly bucket)"
    );
}

#[test]
fn a_two_minute_window_still_halves() {
    let (a, b) = InstantWindow::new(t(10, 0), t(10, 2))
        .unwrap()
        .halves()
        .expect("two one-minute halves");
    assert_eq!(
        (a.start(), a.end(), b.start(), b.end()),
        (t(10, 0), t(10, 1), t(10, 1), t(10, 2))
    );
}

#[test]
fn a_date_window_is_cut_at_the_boundary_nearest_its_middle_the_earlier_on_a_tie() {
    // ten days: the middle is the sixth day, itself a day boundary
    let (a, b) = DateWindow::new(d(2024, 3, 1), d(2024, 3, 10))
        .unwrap()
        .halves(Buckets::Days)
        .unwrap();
    assert_eq!(
        (a.start(), a.end(), b.start(), b.end()),
        (d(2024, 3, 1), d(2024, 3, 5), d(2024, 3, 6), d(2024, 3, 10))
    );
    // March to May: the middle (16 April) is 15 days from 1 April and from 1 May
    let (a, b) = DateWindow::new(d(2024, 3, 1), d(2024, 5, 31))
        .unwrap()
        .halves(Buckets::Months)
        .unwrap();
    assert_eq!(
        (a.end(), b.start()),
        (d(2024, 3, 31), d(2024, 4, 1)),
        "the earlier of two equally near boundaries"
    );
}

#[test]
fn positions_say_until_when_rows_are_covered_and_windows_print_their_bounds() {
    assert_eq!(Position::Instant(t(10, 7)).covered_until(), t(10, 7));
    // a day is covered until the midnight after it
    assert_eq!(
        Position::Date(d(2024, 3, 14)).covered_until(),
        Utc.with_ymd_and_hms(2024, 3, 15, 0, 0, 0).unwrap()
    );
    let w = Window::Instants(InstantWindow::new(t(10, 0), t(10, 5)).unwrap());
    assert_eq!(
        w.to_string(),
        "[2024-03-14T10:00:00Z, 2024-03-14T10:05:00Z]"
    );
    let w = Window::Dates(DateWindow::new(d(2024, 3, 1), d(2024, 3, 3)).unwrap());
    assert_eq!(w.to_string(), "[2024-03-01, 2024-03-03]");
    assert_eq!(
        Position::Instant(t(10, 7)).to_string(),
        "2024-03-14T10:07:00Z"
    );
    assert_eq!(Position::Date(d(2024, 3, 14)).to_string(), "2024-03-14");
}

#[test]
fn a_date_range_ending_on_a_bucket_end_stops_there() {
    // Monday 4 to Sunday 17 March 2024: two whole weeks, room for more, none asked for
    let w = cut_dates(d(2024, 3, 4), d(2024, 3, 17), 40, Buckets::Weeks);
    assert_eq!(
        w,
        vec![DateWindow::new(d(2024, 3, 4), d(2024, 3, 17)).unwrap()]
    );
}
