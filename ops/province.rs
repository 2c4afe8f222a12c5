//! A synthetic province shaped like Jilin (province code 22) for the supervision benchmark:
//! its nine prefecture-level city codes, 60 counties and about 720 police stations.

use zhengming::registry::{City, County, Station};

/// Prefecture-level divisions of Jilin by administrative code, with their number of
/// county-level divisions (60 in all).
const CITIES: [(&str, usize); 9] = [
    ("2201", 10),
    ("2202", 9),
    ("2203", 6),
    ("2204", 4),
    ("2205", 7),
    ("2206", 6),
    ("2207", 5),
    ("2208", 5),
    ("2224", 8),
];

/// Returns the province's cities, counties and stations, without officers. A county code is
/// its city code and two digits, a station code its county code and three digits, and a
/// county has 8 to 16 stations.
pub fn cities() -> Vec<City> {
    let mut county_number = 0usize;
    CITIES
        .iter()
        .map(|(city_code, county_count)| {
            let counties = (1..=*county_count)
                .map(|index| {
                    county_number += 1;
                    let code = format!("{city_code}{index:02}");
                    let station_count = 8 + county_number * 5 % 9;
                    let stations = (1..=station_count)
                        .map(|station| Station {
                            code: format!("{code}{station:03}"),
                            name: format!("station {code}{station:03}"),
                            officers: Vec::new(),
                        })
                        .collect();
                    County {
                        name: format!("county {code}"),
                        code,
                        stations,
                    }
                })
                .collect();
            City {
                code: city_code.to_string(),
                name: format!("city {city_code}"),
                counties,
            }
        })
        .collect()
}

/// Returns every station code of the province in registry order.
pub fn station_codes(cities: &[City]) -> Vec<String> {
    cities
        .iter()
        .flat_map(|city| &city.counties)
        .flat_map(|county| &county.stations)
        .map(|station| station.code.clone())
        .collect()
}
