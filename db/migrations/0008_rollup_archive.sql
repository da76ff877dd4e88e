-- Rollups outlive raw retention (≥ 7 years, carbon-audit records). TimescaleDB keeps them in the
-- continuous aggregates (db/timeseries.ts refreshes them before dropping raw chunks). On plain
-- PostgreSQL the rollups were views over raw readings, so detaching an old partition would have
-- taken its rollups with it: now readings_detach_before() first aggregates the partition into
-- readings_hourly_archive / readings_daily_archive, and the views add the archives to what is
-- still live. Weekly partitions start at Monday 00:00 UTC, so hourly and daily buckets never
-- straddle two partitions.
DO $migration$
BEGIN
  IF (SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relname = 'readings' AND n.nspname = current_schema()) = 'p' THEN
    CREATE TABLE readings_hourly_archive AS SELECT * FROM readings_hourly WITH NO DATA;
    CREATE TABLE readings_daily_archive AS SELECT * FROM readings_daily WITH NO DATA;
    ALTER TABLE readings_hourly_archive ADD PRIMARY KEY (device_id, bucket);
    ALTER TABLE readings_daily_archive ADD PRIMARY KEY (device_id, bucket);
    CREATE INDEX readings_hourly_archive_unit_idx ON readings_hourly_archive (unit_id, bucket);
    CREATE INDEX readings_daily_archive_unit_idx ON readings_daily_archive (unit_id, bucket);
    -- Same scope as readings (0007_security): the views run with the caller's rights.
    ALTER TABLE readings_hourly_archive ENABLE ROW LEVEL SECURITY;
    ALTER TABLE readings_daily_archive ENABLE ROW LEVEL SECURITY;
    CREATE POLICY readings_hourly_archive_read ON readings_hourly_archive FOR SELECT TO thamani_app USING (thamani_unit_visible(unit_id));
    CREATE POLICY readings_daily_archive_read ON readings_daily_archive FOR SELECT TO thamani_app USING (thamani_unit_visible(unit_id));
    GRANT SELECT ON readings_hourly_archive, readings_daily_archive TO thamani_app;

    CREATE OR REPLACE VIEW readings_hourly WITH (security_invoker = on) AS
      SELECT date_bin(interval '1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket, unit_id, device_id,
             min(temperature_c) AS temperature_c_min, max(temperature_c) AS temperature_c_max, avg(temperature_c) AS temperature_c_avg, count(temperature_c) AS temperature_c_count,
             min(ph) AS ph_min, max(ph) AS ph_max, avg(ph) AS ph_avg, count(ph) AS ph_count,
             min(biogas_pressure_kpa) AS biogas_pressure_kpa_min, max(biogas_pressure_kpa) AS biogas_pressure_kpa_max, avg(biogas_pressure_kpa) AS biogas_pressure_kpa_avg, count(biogas_pressure_kpa) AS biogas_pressure_kpa_count,
             min(methane_pct) AS methane_pct_min, max(methane_pct) AS methane_pct_max, avg(methane_pct) AS methane_pct_avg, count(methane_pct) AS methane_pct_count,
             min(gas_flow_lpm) AS gas_flow_lpm_min, max(gas_flow_lpm) AS gas_flow_lpm_max, avg(gas_flow_lpm) AS gas_flow_lpm_avg, count(gas_flow_lpm) AS gas_flow_lpm_count,
             min(slurry_level_pct) AS slurry_level_pct_min, max(slurry_level_pct) AS slurry_level_pct_max, avg(slurry_level_pct) AS slurry_level_pct_avg, count(slurry_level_pct) AS slurry_level_pct_count,
             min(h2s_ppm) AS h2s_ppm_min, max(h2s_ppm) AS h2s_ppm_max, avg(h2s_ppm) AS h2s_ppm_avg, count(h2s_ppm) AS h2s_ppm_count,
             min(fill_level_pct) AS fill_level_pct_min, max(fill_level_pct) AS fill_level_pct_max, avg(fill_level_pct) AS fill_level_pct_avg, count(fill_level_pct) AS fill_level_pct_count,
             min(weight_kg) AS weight_kg_min, max(weight_kg) AS weight_kg_max, avg(weight_kg) AS weight_kg_avg, count(weight_kg) AS weight_kg_count,
             min(lid_open) AS lid_open_min, max(lid_open) AS lid_open_max, avg(lid_open) AS lid_open_avg, count(lid_open) AS lid_open_count,
             min(battery_v) AS battery_v_min, max(battery_v) AS battery_v_max, avg(battery_v) AS battery_v_avg, count(battery_v) AS battery_v_count,
             min(rssi_dbm) AS rssi_dbm_min, max(rssi_dbm) AS rssi_dbm_max, avg(rssi_dbm) AS rssi_dbm_avg, count(rssi_dbm) AS rssi_dbm_count
      FROM readings
      GROUP BY 1, unit_id, device_id
      UNION ALL
      SELECT * FROM readings_hourly_archive;
    CREATE OR REPLACE VIEW readings_daily WITH (security_invoker = on) AS
      SELECT date_bin(interval '1 day', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket, unit_id, device_id,
             min(temperature_c) AS temperature_c_min, max(temperature_c) AS temperature_c_max, avg(temperature_c) AS temperature_c_avg, count(temperature_c) AS temperature_c_count,
             min(ph) AS ph_min, max(ph) AS ph_max, avg(ph) AS ph_avg, count(ph) AS ph_count,
             min(biogas_pressure_kpa) AS biogas_pressure_kpa_min, max(biogas_pressure_kpa) AS biogas_pressure_kpa_max, avg(biogas_pressure_kpa) AS biogas_pressure_kpa_avg, count(biogas_pressure_kpa) AS biogas_pressure_kpa_count,
             min(methane_pct) AS methane_pct_min, max(methane_pct) AS methane_pct_max, avg(methane_pct) AS methane_pct_avg, count(methane_pct) AS methane_pct_count,
             min(gas_flow_lpm) AS gas_flow_lpm_min, max(gas_flow_lpm) AS gas_flow_lpm_max, avg(gas_flow_lpm) AS gas_flow_lpm_avg, count(gas_flow_lpm) AS gas_flow_lpm_count,
             min(slurry_level_pct) AS slurry_level_pct_min, max(slurry_level_pct) AS slurry_level_pct_max, avg(slurry_level_pct) AS slurry_level_pct_avg, count(slurry_level_pct) AS slurry_level_pct_count,
             min(h2s_ppm) AS h2s_ppm_min, max(h2s_ppm) AS h2s_ppm_max, avg(h2s_ppm) AS h2s_ppm_avg, count(h2s_ppm) AS h2s_ppm_count,
             min(fill_level_pct) AS fill_level_pct_min, max(fill_level_pct) AS fill_level_pct_max, avg(fill_level_pct) AS fill_level_pct_avg, count(fill_level_pct) AS fill_level_pct_count,
             min(weight_kg) AS weight_kg_min, max(weight_kg) AS weight_kg_max, avg(weight_kg) AS weight_kg_avg, count(weight_kg) AS weight_kg_count,
             min(lid_open) AS lid_open_min, max(lid_open) AS lid_open_max, avg(lid_open) AS lid_open_avg, count(lid_open) AS lid_open_count,
             min(battery_v) AS battery_v_min, max(battery_v) AS battery_v_max, avg(battery_v) AS battery_v_avg, count(battery_v) AS battery_v_count,
             min(rssi_dbm) AS rssi_dbm_min, max(rssi_dbm) AS rssi_dbm_max, avg(rssi_dbm) AS rssi_dbm_avg, count(rssi_dbm) AS rssi_dbm_count
      FROM readings
      GROUP BY 1, unit_id, device_id
      UNION ALL
      SELECT * FROM readings_daily_archive;

    CREATE OR REPLACE FUNCTION readings_detach_before(cutoff timestamptz)
    RETURNS SETOF text LANGUAGE plpgsql AS $f$
    DECLARE
      part text;
    BEGIN
      FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'readings'::regclass AND c.relname ~ '^readings_p[0-9]{8}$'
        ORDER BY c.relname
      LOOP
        IF to_timestamp(substr(part, 11), 'YYYYMMDD')::timestamp AT TIME ZONE 'UTC' + interval '7 days' <= cutoff THEN
          EXECUTE format('INSERT INTO readings_hourly_archive SELECT date_bin(interval %L, ts, TIMESTAMPTZ %L), unit_id, device_id, min(temperature_c), max(temperature_c), avg(temperature_c), count(temperature_c), min(ph), max(ph), avg(ph), count(ph), min(biogas_pressure_kpa), max(biogas_pressure_kpa), avg(biogas_pressure_kpa), count(biogas_pressure_kpa), min(methane_pct), max(methane_pct), avg(methane_pct), count(methane_pct), min(gas_flow_lpm), max(gas_flow_lpm), avg(gas_flow_lpm), count(gas_flow_lpm), min(slurry_level_pct), max(slurry_level_pct), avg(slurry_level_pct), count(slurry_level_pct), min(h2s_ppm), max(h2s_ppm), avg(h2s_ppm), count(h2s_ppm), min(fill_level_pct), max(fill_level_pct), avg(fill_level_pct), count(fill_level_pct), min(weight_kg), max(weight_kg), avg(weight_kg), count(weight_kg), min(lid_open), max(lid_open), avg(lid_open), count(lid_open), min(battery_v), max(battery_v), avg(battery_v), count(battery_v), min(rssi_dbm), max(rssi_dbm), avg(rssi_dbm), count(rssi_dbm) FROM %I GROUP BY 1, unit_id, device_id ON CONFLICT DO NOTHING', '1 hour', '2000-01-01 00:00:00+00', part);
          EXECUTE format('INSERT INTO readings_daily_archive SELECT date_bin(interval %L, ts, TIMESTAMPTZ %L), unit_id, device_id, min(temperature_c), max(temperature_c), avg(temperature_c), count(temperature_c), min(ph), max(ph), avg(ph), count(ph), min(biogas_pressure_kpa), max(biogas_pressure_kpa), avg(biogas_pressure_kpa), count(biogas_pressure_kpa), min(methane_pct), max(methane_pct), avg(methane_pct), count(methane_pct), min(gas_flow_lpm), max(gas_flow_lpm), avg(gas_flow_lpm), count(gas_flow_lpm), min(slurry_level_pct), max(slurry_level_pct), avg(slurry_level_pct), count(slurry_level_pct), min(h2s_ppm), max(h2s_ppm), avg(h2s_ppm), count(h2s_ppm), min(fill_level_pct), max(fill_level_pct), avg(fill_level_pct), count(fill_level_pct), min(weight_kg), max(weight_kg), avg(weight_kg), count(weight_kg), min(lid_open), max(lid_open), avg(lid_open), count(lid_open), min(battery_v), max(battery_v), avg(battery_v), count(battery_v), min(rssi_dbm), max(rssi_dbm), avg(rssi_dbm), count(rssi_dbm) FROM %I GROUP BY 1, unit_id, device_id ON CONFLICT DO NOTHING', '1 day', '2000-01-01 00:00:00+00', part);
          EXECUTE format('ALTER TABLE readings DETACH PARTITION %I', part);
          RETURN NEXT part;
        END IF;
      END LOOP;
    END
    $f$;
  END IF;
END
$migration$;
