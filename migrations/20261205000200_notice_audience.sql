-- The area a notice (通报) is addressed to: the inspected station, or its county, city or
-- province, whose stations all read it. Earlier notices were addressed to the station.
ALTER TABLE inspection_notices
    ADD COLUMN audience_level text NOT NULL DEFAULT 'station',
    ADD COLUMN audience_code  text;
UPDATE inspection_notices SET audience_code = station_code;
ALTER TABLE inspection_notices ALTER COLUMN audience_code SET NOT NULL;
