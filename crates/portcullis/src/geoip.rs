//! Where an address is, from a MaxMind-format database (GeoLite2/GeoIP2
//! Country or City, or a compatible one such as DB-IP's). Loaded once into
//! memory at start; a lookup is a tree walk, no I/O.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use portcullis_core::policy::{Geolocator, Location};
use serde::Deserialize;

/// An opened GeoIP database.
pub struct GeoIpDatabase {
    reader: maxminddb::Reader<Vec<u8>>,
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    country: Option<Country<'a>>,
    #[serde(borrow)]
    city: Option<Named<'a>>,
    location: Option<Coordinates>,
}

#[derive(Deserialize)]
struct Country<'a> {
    iso_code: Option<&'a str>,
    #[serde(borrow, default)]
    names: BTreeMap<&'a str, &'a str>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow, default)]
    names: BTreeMap<&'a str, &'a str>,
}

/// "City, Country" (or what the database names of it) by language code.
fn place_names(country: Option<&Country<'_>>, city: Option<&Named<'_>>) -> BTreeMap<String, String> {
    let empty = BTreeMap::new();
    let countries = country.map_or(&empty, |c| &c.names);
    let cities = city.map_or(&empty, |c| &c.names);
    countries
        .keys()
        .chain(cities.keys())
        .map(|lang| {
            let parts: Vec<&str> = [cities.get(lang), countries.get(lang)].into_iter().flatten().copied().collect();
            ((*lang).to_owned(), parts.join(", "))
        })
        .collect()
}

#[derive(Deserialize)]
struct Coordinates {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

impl GeoIpDatabase {
    /// Reads the database file; a clear error names the file when it is missing or not a MaxMind database.
    pub fn open(path: &Path) -> Result<Self, String> {
        let reader = maxminddb::Reader::open_readfile(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self { reader })
    }
}

impl Geolocator for GeoIpDatabase {
    fn locate(&self, ip: IpAddr) -> Option<Location> {
        match self.reader.lookup::<Record<'_>>(ip) {
            Ok(Some(r)) => Some(Location {
                names: place_names(r.country.as_ref(), r.city.as_ref()),
                country: r.country.and_then(|c| c.iso_code).map(str::to_owned),
                latitude: r.location.as_ref().and_then(|l| l.latitude),
                longitude: r.location.as_ref().and_then(|l| l.longitude),
            }),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, %ip, "GeoIP lookup failed");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/geoip").join(name)
    }

    #[test]
    fn the_test_databases_place_london_and_changchun() {
        let city = GeoIpDatabase::open(&fixture("GeoLite2-City-Test.mmdb")).unwrap();
        let london = city.locate("81.2.69.142".parse().unwrap()).unwrap();
        assert_eq!(london.country.as_deref(), Some("GB"));
        assert!((london.latitude.unwrap() - 51.5142).abs() < 0.001);
        assert_eq!(london.names.get("en").map(String::as_str), Some("London, United Kingdom"));
        assert_eq!(london.names.get("de").map(String::as_str), Some("London, Vereinigtes Königreich"));
        assert_eq!(city.locate("175.16.199.1".parse().unwrap()).unwrap().country.as_deref(), Some("CN"));
        assert_eq!(city.locate("127.0.0.1".parse().unwrap()), None, "not in the database");
        let country = GeoIpDatabase::open(&fixture("GeoLite2-Country-Test.mmdb")).unwrap();
        let se = country.locate("89.160.20.113".parse().unwrap()).unwrap();
        assert_eq!((se.country.as_deref(), se.latitude), (Some("SE"), None), "a country database has no coordinates");
    }

    #[test]
    fn a_missing_or_foreign_file_is_a_clear_error() {
        let e = GeoIpDatabase::open(Path::new("/nonexistent/geo.mmdb")).err().unwrap();
        assert!(e.contains("/nonexistent/geo.mmdb"), "{e}");
        let e = GeoIpDatabase::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).err().unwrap();
        assert!(e.contains("Cargo.toml"), "{e}");
    }
}
