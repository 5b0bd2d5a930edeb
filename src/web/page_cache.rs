//! Pages rendered once and served many times. What a page derives from the catalog changes
//! only when the log applies a catalog entry, and a seat map only when its show actor's
//! snapshot changes; so a page is cached under those facts (its *stamp*: the catalog
//! version, the day, the seat-map snapshot) and served while the stamp still holds and the
//! time it was good until has not come. The per-request part, the CSRF token, is left out
//! of the cached render and put in on each answer.
//!
//! Plain data: no clock, no database, no actor; callers pass the time and the stamps in.
//! Every cache is bounded in entries and in bytes, least recently used out first, and the
//! listing's canonical views (no search, a listed date, a known theater or none) have their
//! own, so random searches or dates can only push each other out.
use crate::actors::show::SeatMapView;
use crate::db::models::Theater;
use crate::wal::CatalogVersion;
use actix_web::web::Bytes;
use chrono::{NaiveDate, NaiveDateTime};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

/// A rendered page split where the CSRF token goes.
#[derive(Debug)]
pub struct Rendered {
    parts: Vec<Bytes>,
}

impl Rendered {
    /// `body` was rendered with `placeholder` as the token.
    pub fn split(body: &str, placeholder: &str) -> Self {
        Self { parts: body.split(placeholder).map(|p| Bytes::copy_from_slice(p.as_bytes())).collect() }
    }

    /// The page with `token` in every place the placeholder was (no copy when it has none).
    pub fn with_token(&self, token: &str) -> Bytes {
        if let [only] = self.parts.as_slice() {
            return only.clone();
        }
        let len = self.size() + token.len() * (self.parts.len() - 1);
        let mut out = Vec::with_capacity(len);
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(token.as_bytes());
            }
            out.extend_from_slice(part);
        }
        Bytes::from(out)
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }
}

/// A map bounded in entries and in (caller-reported) bytes; inserting past either bound
/// drops the least recently used entries first.
#[derive(Debug)]
pub struct Lru<K, V> {
    entries: HashMap<K, Slot<V>>,
    clock: u64,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

#[derive(Debug)]
struct Slot<V> {
    value: V,
    size: usize,
    used: u64,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self { entries: HashMap::new(), clock: 0, bytes: 0, max_entries, max_bytes }
    }

    /// The value under `key`, now the most recently used.
    pub fn get(&mut self, key: &K) -> Option<&V> {
        self.clock += 1;
        let slot = self.entries.get_mut(key)?;
        slot.used = self.clock;
        Some(&slot.value)
    }

    /// Stores `value` (`size` bytes) under `key`. A value larger than the whole bound is
    /// not kept.
    pub fn insert(&mut self, key: K, value: V, size: usize) {
        self.remove(&key);
        if size > self.max_bytes || self.max_entries == 0 {
            return;
        }
        while self.entries.len() >= self.max_entries || self.bytes + size > self.max_bytes {
            let Some(oldest) = self.entries.iter().min_by_key(|(_, s)| s.used).map(|(k, _)| k.clone()) else {
                break;
            };
            self.remove(&oldest);
        }
        self.clock += 1;
        self.bytes += size;
        self.entries.insert(key, Slot { value, size, used: self.clock });
    }

    pub fn remove(&mut self, key: &K) {
        if let Some(slot) = self.entries.remove(key) {
            self.bytes -= slot.size;
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes held, as reported on insert.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Rendered pages, each under the stamp it was derived from and good until a time.
#[derive(Debug)]
pub struct PageCache<K, S> {
    lru: Lru<K, Cached<S>>,
}

#[derive(Debug)]
struct Cached<S> {
    stamp: S,
    until: Option<NaiveDateTime>,
    page: Arc<Rendered>,
}

impl<K: Hash + Eq + Clone, S: PartialEq> PageCache<K, S> {
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self { lru: Lru::new(max_entries, max_bytes) }
    }

    /// The page under `key` if it was rendered under `stamp` and `now` is before its end; a
    /// stale one is dropped.
    pub fn get(&mut self, key: &K, stamp: &S, now: NaiveDateTime) -> Option<Arc<Rendered>> {
        let fresh = match self.lru.get(key) {
            None => return None,
            Some(c) if c.stamp == *stamp && c.until.is_none_or(|u| now < u) => return Some(c.page.clone()),
            Some(_) => false,
        };
        if !fresh {
            self.lru.remove(key);
        }
        None
    }

    /// Keeps `page`, rendered under `stamp`, until `until` (None: while the stamp holds).
    /// `extra` counts memory the stamp holds beside the page.
    pub fn insert(&mut self, key: K, stamp: S, until: Option<NaiveDateTime>, page: Arc<Rendered>, extra: usize) {
        let size = page.size() + extra;
        self.lru.insert(key, Cached { stamp, until, page }, size);
    }

    pub fn len(&self) -> usize {
        self.lru.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lru.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.lru.bytes()
    }
}

/// A shared value compared by identity: the same `Arc` or not. A show actor hands out one
/// snapshot of its map until the map changes, so the same snapshot means the same map (and
/// an entry holding it keeps its address from being reused).
#[derive(Debug, Clone)]
pub struct Same<T>(pub Arc<T>);

impl<T> PartialEq for Same<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The listing's view of one catalog on one day: the dates that have shows (from the day
/// before) and the theaters.
#[derive(Debug)]
pub struct ListingDay {
    pub dates: Vec<NaiveDate>,
    pub theaters: Vec<Theater>,
}

/// Which listing page: its date (resolved: the default date is the date it stands for),
/// theater and search text as shown in the search box.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListingKey {
    pub date: NaiveDate,
    pub theater: Option<i64>,
    pub search: String,
}

impl ListingKey {
    /// One of the listing's own views: no search, a date it lists, every theater or one it
    /// lists. There are at most 14 × (theaters + 1) of them.
    pub fn canonical(&self, day: &ListingDay) -> bool {
        self.search.is_empty()
            && day.dates.contains(&self.date)
            && self.theater.is_none_or(|t| day.theaters.iter().any(|th| th.id == t))
    }
}

/// What a listing page derives from: the catalog and the day it is "today" in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListingStamp {
    pub catalog: CatalogVersion,
    pub today: NaiveDate,
}

/// What a show page derives from: the catalog (its header) and its actor's snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowStamp {
    pub catalog: CatalogVersion,
    pub map: Same<SeatMapView>,
}

/// The bounds: entries and bytes of each cache.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub listings: (usize, usize),
    pub searches: (usize, usize),
    pub shows: (usize, usize),
}

impl Default for Bounds {
    /// 32 + 8 + 32 MiB at most: a full listing is ~65 KB, a show page of a 300-seat hall
    /// ~100 KB with its snapshot.
    fn default() -> Self {
        const MIB: usize = 1 << 20;
        Self { listings: (512, 32 * MIB), searches: (256, 8 * MIB), shows: (512, 32 * MIB) }
    }
}

/// The caches of the pages, held in the application state.
#[derive(Debug)]
pub struct PageCaches {
    /// Stands for the CSRF token in a cached render; random, so no page text can be it.
    placeholder: String,
    day: Mutex<Option<(ListingStamp, Arc<ListingDay>)>>,
    listings: Mutex<PageCache<ListingKey, ListingStamp>>,
    searches: Mutex<PageCache<ListingKey, ListingStamp>>,
    shows: Mutex<PageCache<i64, ShowStamp>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PageCaches {
    pub fn new(placeholder: String, bounds: Bounds) -> Self {
        Self {
            placeholder,
            day: Mutex::new(None),
            listings: Mutex::new(PageCache::new(bounds.listings.0, bounds.listings.1)),
            searches: Mutex::new(PageCache::new(bounds.searches.0, bounds.searches.1)),
            shows: Mutex::new(PageCache::new(bounds.shows.0, bounds.shows.1)),
        }
    }

    pub fn placeholder(&self) -> &str {
        &self.placeholder
    }

    /// Splits a page rendered with [`placeholder`](Self::placeholder) as its token.
    pub fn split(&self, body: &str) -> Arc<Rendered> {
        Arc::new(Rendered::split(body, &self.placeholder))
    }

    /// The dates and theaters of the listing, if derived under `stamp`.
    pub fn day(&self, stamp: &ListingStamp) -> Option<Arc<ListingDay>> {
        locked(&self.day).as_ref().filter(|(s, _)| s == stamp).map(|(_, d)| d.clone())
    }

    pub fn keep_day(&self, stamp: ListingStamp, day: Arc<ListingDay>) {
        *locked(&self.day) = Some((stamp, day));
    }

    pub fn listing(&self, key: &ListingKey, stamp: &ListingStamp, now: NaiveDateTime) -> Option<Arc<Rendered>> {
        let hit = locked(&self.listings).get(key, stamp, now);
        hit.or_else(|| locked(&self.searches).get(key, stamp, now))
    }

    /// Keeps a listing page among the canonical views or the others.
    pub fn keep_listing(
        &self,
        key: ListingKey,
        canonical: bool,
        stamp: ListingStamp,
        until: Option<NaiveDateTime>,
        page: Arc<Rendered>,
    ) {
        let extra = key.search.len();
        let cache = if canonical { &self.listings } else { &self.searches };
        locked(cache).insert(key, stamp, until, page, extra);
    }

    pub fn show(&self, id: i64, stamp: &ShowStamp, now: NaiveDateTime) -> Option<Arc<Rendered>> {
        locked(&self.shows).get(&id, stamp, now)
    }

    /// Keeps a show page, with the snapshot it shows.
    pub fn keep_show(&self, id: i64, stamp: ShowStamp, page: Arc<Rendered>) {
        let map = &stamp.map.0;
        let seats = map.rows.iter().map(|r| r.seats.len()).sum::<usize>();
        let extra = seats * (std::mem::size_of::<crate::actors::show::SeatView>() + 16);
        locked(&self.shows).insert(id, stamp, None, page, extra);
    }

    /// Pages held and their bytes: (listings, searches, shows).
    pub fn sizes(&self) -> [(usize, usize); 3] {
        fn of<K: Hash + Eq + Clone, S: PartialEq>(c: &Mutex<PageCache<K, S>>) -> (usize, usize) {
            let c = locked(c);
            (c.len(), c.bytes())
        }
        [of(&self.listings), of(&self.searches), of(&self.shows)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::LogPosition;

    fn at(h: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, 6).unwrap().and_hms_opt(h, 0, 0).unwrap()
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
    }

    fn catalog(changes: u64, lsn: i64) -> CatalogVersion {
        CatalogVersion { changes, at: LogPosition { last_lsn: lsn, last_epoch: 1 } }
    }

    fn page(text: &str) -> Arc<Rendered> {
        Arc::new(Rendered::split(text, "@@TOKEN@@"))
    }

    fn text(r: &Rendered) -> String {
        String::from_utf8(r.with_token("").to_vec()).unwrap()
    }

    #[test]
    fn the_token_goes_where_the_placeholder_was_each_time() {
        let r = Rendered::split("<form>@@TOKEN@@</form><form>@@TOKEN@@</form>", "@@TOKEN@@");
        assert_eq!(r.with_token("abc"), Bytes::from_static(b"<form>abc</form><form>abc</form>"));
        assert_eq!(r.with_token("xyz"), Bytes::from_static(b"<form>xyz</form><form>xyz</form>"));
        let plain = Rendered::split("<p>no form</p>", "@@TOKEN@@");
        assert_eq!(plain.with_token("abc"), Bytes::from_static(b"<p>no form</p>"));
        assert_eq!(plain.size(), 14);
        let edges = Rendered::split("@@TOKEN@@x@@TOKEN@@", "@@TOKEN@@");
        assert_eq!(edges.with_token("t"), Bytes::from_static(b"txt"));
    }

    #[test]
    fn the_lru_keeps_within_its_entries_and_bytes_dropping_the_least_recently_used() {
        let mut lru = Lru::new(3, 100);
        lru.insert("a", 1, 10);
        lru.insert("b", 2, 10);
        lru.insert("c", 3, 10);
        assert_eq!(lru.get(&"a"), Some(&1), "a is now the most recent");
        lru.insert("d", 4, 10);
        assert_eq!((lru.len(), lru.bytes()), (3, 30));
        assert_eq!(lru.get(&"b"), None, "b was the least recently used");
        assert!(lru.get(&"a").is_some() && lru.get(&"c").is_some() && lru.get(&"d").is_some());

        // Bytes: an 85-byte value pushes out what it must, oldest first (a, for the count;
        // c, for the bytes).
        lru.insert("e", 5, 85);
        assert_eq!(lru.get(&"e"), Some(&5));
        assert_eq!(lru.get(&"a"), None);
        assert_eq!(lru.get(&"c"), None);
        assert_eq!(lru.get(&"d"), Some(&4));
        assert_eq!((lru.len(), lru.bytes()), (2, 95));

        // Replacing a key counts it once; a value bigger than the bound is not kept.
        lru.insert("d", 6, 5);
        assert_eq!((lru.len(), lru.bytes()), (2, 90));
        lru.insert("huge", 7, 101);
        assert_eq!(lru.get(&"huge"), None);
        assert_eq!((lru.len(), lru.bytes()), (2, 90));
    }

    #[test]
    fn a_flood_of_keys_never_grows_the_lru_past_its_bounds() {
        let mut lru = Lru::new(64, 10_000);
        for i in 0..10_000u32 {
            lru.insert(format!("search {i}"), i, 100 + (i as usize % 300));
            assert!(lru.len() <= 64 && lru.bytes() <= 10_000);
        }
    }

    #[test]
    fn a_page_is_served_only_under_its_stamp_and_before_its_end() {
        let mut cache: PageCache<&str, CatalogVersion> = PageCache::new(10, 1 << 20);
        cache.insert("home", catalog(1, 10), Some(at(19)), page("v1"), 0);
        assert_eq!(text(&cache.get(&"home", &catalog(1, 10), at(18)).unwrap()), "v1");
        // A catalog entry applied: another version, the page is stale and dropped.
        assert!(cache.get(&"home", &catalog(2, 11), at(18)).is_none());
        assert!(cache.get(&"home", &catalog(1, 10), at(18)).is_none(), "dropped, not kept for later");

        cache.insert("home", catalog(2, 11), Some(at(19)), page("v2"), 0);
        assert!(cache.get(&"home", &catalog(2, 11), at(19)).is_none(), "19:00 is its end");
        cache.insert("home", catalog(2, 11), None, page("v3"), 0);
        assert_eq!(text(&cache.get(&"home", &catalog(2, 11), at(23)).unwrap()), "v3");
        assert!(cache.get(&"other", &catalog(2, 11), at(1)).is_none());
    }

    #[test]
    fn a_rebuild_that_brings_a_position_back_is_still_another_version() {
        let mut cache: PageCache<&str, CatalogVersion> = PageCache::new(10, 1 << 20);
        cache.insert("home", catalog(3, 10), None, page("before"), 0);
        assert!(cache.get(&"home", &catalog(5, 10), at(1)).is_none());
    }

    fn theater(id: i64) -> Theater {
        Theater {
            id,
            external_id: format!("T{id}"),
            tid: "AAAAA".into(),
            name: format!("Theater {id}"),
            latitude: 0.0,
            longitude: 0.0,
            timezone: "America/Los_Angeles".into(),
            layout_id: 1,
        }
    }

    #[test]
    fn listings_are_kept_per_date_theater_and_search_and_per_day() {
        let caches = PageCaches::new("@@TOKEN@@".into(), Bounds::default());
        let stamp = ListingStamp { catalog: catalog(1, 5), today: day(6) };
        let key = |d, t, s: &str| ListingKey { date: day(d), theater: t, search: s.into() };
        caches.keep_listing(key(6, None, ""), true, stamp, None, page("all on the 6th"));
        caches.keep_listing(key(7, None, ""), true, stamp, None, page("all on the 7th"));
        caches.keep_listing(key(6, Some(3), ""), true, stamp, None, page("theater 3"));
        caches.keep_listing(key(6, None, "alien"), false, stamp, None, page("alien"));
        let got = |k: ListingKey, s: &ListingStamp| caches.listing(&k, s, at(12)).map(|r| text(&r));
        assert_eq!(got(key(6, None, ""), &stamp).as_deref(), Some("all on the 6th"));
        assert_eq!(got(key(7, None, ""), &stamp).as_deref(), Some("all on the 7th"));
        assert_eq!(got(key(6, Some(3), ""), &stamp).as_deref(), Some("theater 3"));
        assert_eq!(got(key(6, Some(4), ""), &stamp), None);
        assert_eq!(got(key(6, None, "alien"), &stamp).as_deref(), Some("alien"));
        assert_eq!(got(key(6, None, "Alien"), &stamp), None, "the search box shows the text as typed");
        // The next day, the same date's page is another page (the date list moved on).
        let tomorrow = ListingStamp { today: day(7), ..stamp };
        assert_eq!(got(key(7, None, ""), &tomorrow), None);
    }

    #[test]
    fn random_searches_cannot_push_out_the_canonical_views() {
        let bounds = Bounds { listings: (8, 1 << 20), searches: (4, 1 << 20), shows: (1, 1) };
        let caches = PageCaches::new("@@TOKEN@@".into(), bounds);
        let stamp = ListingStamp { catalog: catalog(1, 5), today: day(6) };
        let home = ListingKey { date: day(6), theater: None, search: String::new() };
        caches.keep_listing(home.clone(), true, stamp, None, page("home"));
        for i in 0..1_000 {
            let key = ListingKey { search: format!("random {i}"), ..home.clone() };
            caches.keep_listing(key, false, stamp, None, page("nothing matches"));
        }
        assert!(caches.listing(&home, &stamp, at(12)).is_some());
        let [listings, searches, _] = caches.sizes();
        assert_eq!((listings.0, searches.0), (1, 4));
    }

    #[test]
    fn the_canonical_views_are_listed_dates_and_known_theaters_without_a_search() {
        let d = ListingDay { dates: vec![day(5), day(6), day(7)], theaters: vec![theater(1), theater(2)] };
        let key = |date, theater, search: &str| ListingKey { date, theater, search: search.into() };
        assert!(key(day(6), None, "").canonical(&d));
        assert!(key(day(7), Some(2), "").canonical(&d));
        assert!(!key(day(8), None, "").canonical(&d), "a date without shows");
        assert!(!key(day(6), Some(99), "").canonical(&d), "an unknown theater");
        assert!(!key(day(6), None, "x").canonical(&d), "a search");
    }

    #[test]
    fn the_day_is_kept_for_one_stamp() {
        let caches = PageCaches::new("@@TOKEN@@".into(), Bounds::default());
        let stamp = ListingStamp { catalog: catalog(1, 5), today: day(6) };
        caches.keep_day(stamp, Arc::new(ListingDay { dates: vec![day(6)], theaters: vec![] }));
        assert_eq!(caches.day(&stamp).unwrap().dates, vec![day(6)]);
        assert!(caches.day(&ListingStamp { catalog: catalog(2, 6), ..stamp }).is_none());
        assert!(caches.day(&ListingStamp { today: day(7), ..stamp }).is_none());
    }

    fn snapshot(version: u64) -> Arc<SeatMapView> {
        Arc::new(SeatMapView {
            show_id: 1,
            version,
            starts_at: chrono::Utc::now(),
            on_sale: true,
            free: 0,
            categories: vec![],
            rows: vec![],
        })
    }

    #[test]
    fn a_show_page_is_served_only_for_the_snapshot_it_shows() {
        let caches = PageCaches::new("@@TOKEN@@".into(), Bounds::default());
        let (a, b) = (snapshot(7), snapshot(7));
        let stamp =
            |map: &Arc<SeatMapView>, changes| ShowStamp { catalog: catalog(changes, 3), map: Same(map.clone()) };
        caches.keep_show(1, stamp(&a, 1), page("<input value=\"@@TOKEN@@\">"));
        let hit = caches.show(1, &stamp(&a, 1), at(12)).unwrap();
        assert_eq!(hit.with_token("tok"), Bytes::from_static(b"<input value=\"tok\">"));
        // Another snapshot (a reloaded actor may count versions from the start again).
        assert!(caches.show(1, &stamp(&b, 1), at(12)).is_none());
        caches.keep_show(1, stamp(&a, 1), page("again"));
        assert!(caches.show(1, &stamp(&a, 2), at(12)).is_none(), "a catalog entry applied");
        assert!(caches.show(2, &stamp(&a, 1), at(12)).is_none());
    }
}
