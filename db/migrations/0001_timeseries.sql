-- Time-series storage, two paths behind one schema (db/timeseries.ts hides the difference).
-- TimescaleDB when the server offers it (and preloads it): `readings` becomes a hypertable with
-- compression segmented by device and hourly/daily continuous aggregates. Plain PostgreSQL:
-- `readings` becomes a table range-partitioned by week, partitions made ahead of time by
-- readings_ensure_partitions(), old ones detached by readings_detach_before(), and the same
-- rollups served by views over date_bin(). Both paths expose readings_hourly and readings_daily
-- with the same columns: for every metric m, m_min, m_max, m_avg and m_count.
-- Buckets are UTC (Kenya keeps UTC+3 all year, so a local day is a fixed 3-hour shift).
DO $migration$
DECLARE
  has_timescale boolean := EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
    AND coalesce(current_setting('shared_preload_libraries', true), '') ~ 'timescaledb';
  tsl boolean;
BEGIN
  IF has_timescale THEN
    CREATE EXTENSION IF NOT EXISTS timescaledb;
    PERFORM create_hypertable('readings', 'ts', chunk_time_interval => interval '7 days');
    -- Compression and continuous aggregates are in the Timescale License build, not Apache-only.
    tsl := coalesce(current_setting('timescaledb.license', true), 'timescale') = 'timescale';
  END IF;

  IF has_timescale AND tsl THEN
    ALTER TABLE readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id', timescaledb.compress_orderby = 'ts DESC');
    -- Older than the ingest backfill window can reach (docs/operations.md), so late data never lands in a compressed chunk.
    PERFORM add_compression_policy('readings', compress_after => interval '14 days');
    EXECUTE $v$
      CREATE MATERIALIZED VIEW readings_hourly
      WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT time_bucket(interval '1 hour', ts) AS bucket, unit_id, device_id,
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
        GROUP BY bucket, unit_id, device_id
      WITH NO DATA
    $v$;
    -- start_offset stays well inside raw retention so dropping old raw chunks never erases rollups.
    PERFORM add_continuous_aggregate_policy('readings_hourly', start_offset => interval '30 days', end_offset => interval '1 hour', schedule_interval => interval '10 minutes');
    EXECUTE $v$
      CREATE MATERIALIZED VIEW readings_daily
      WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT time_bucket(interval '1 day', bucket) AS bucket, unit_id, device_id,
               min(temperature_c_min) AS temperature_c_min, max(temperature_c_max) AS temperature_c_max, sum(temperature_c_avg * temperature_c_count) / nullif(sum(temperature_c_count), 0) AS temperature_c_avg, sum(temperature_c_count)::bigint AS temperature_c_count,
               min(ph_min) AS ph_min, max(ph_max) AS ph_max, sum(ph_avg * ph_count) / nullif(sum(ph_count), 0) AS ph_avg, sum(ph_count)::bigint AS ph_count,
               min(biogas_pressure_kpa_min) AS biogas_pressure_kpa_min, max(biogas_pressure_kpa_max) AS biogas_pressure_kpa_max, sum(biogas_pressure_kpa_avg * biogas_pressure_kpa_count) / nullif(sum(biogas_pressure_kpa_count), 0) AS biogas_pressure_kpa_avg, sum(biogas_pressure_kpa_count)::bigint AS biogas_pressure_kpa_count,
               min(methane_pct_min) AS methane_pct_min, max(methane_pct_max) AS methane_pct_max, sum(methane_pct_avg * methane_pct_count) / nullif(sum(methane_pct_count), 0) AS methane_pct_avg, sum(methane_pct_count)::bigint AS methane_pct_count,
               min(gas_flow_lpm_min) AS gas_flow_lpm_min, max(gas_flow_lpm_max) AS gas_flow_lpm_max, sum(gas_flow_lpm_avg * gas_flow_lpm_count) / nullif(sum(gas_flow_lpm_count), 0) AS gas_flow_lpm_avg, sum(gas_flow_lpm_count)::bigint AS gas_flow_lpm_count,
               min(slurry_level_pct_min) AS slurry_level_pct_min, max(slurry_level_pct_max) AS slurry_level_pct_max, sum(slurry_level_pct_avg * slurry_level_pct_count) / nullif(sum(slurry_level_pct_count), 0) AS slurry_level_pct_avg, sum(slurry_level_pct_count)::bigint AS slurry_level_pct_count,
               min(h2s_ppm_min) AS h2s_ppm_min, max(h2s_ppm_max) AS h2s_ppm_max, sum(h2s_ppm_avg * h2s_ppm_count) / nullif(sum(h2s_ppm_count), 0) AS h2s_ppm_avg, sum(h2s_ppm_count)::bigint AS h2s_ppm_count,
               min(fill_level_pct_min) AS fill_level_pct_min, max(fill_level_pct_max) AS fill_level_pct_max, sum(fill_level_pct_avg * fill_level_pct_count) / nullif(sum(fill_level_pct_count), 0) AS fill_level_pct_avg, sum(fill_level_pct_count)::bigint AS fill_level_pct_count,
               min(weight_kg_min) AS weight_kg_min, max(weight_kg_max) AS weight_kg_max, sum(weight_kg_avg * weight_kg_count) / nullif(sum(weight_kg_count), 0) AS weight_kg_avg, sum(weight_kg_count)::bigint AS weight_kg_count,
               min(lid_open_min) AS lid_open_min, max(lid_open_max) AS lid_open_max, sum(lid_open_avg * lid_open_count) / nullif(sum(lid_open_count), 0) AS lid_open_avg, sum(lid_open_count)::bigint AS lid_open_count,
               min(battery_v_min) AS battery_v_min, max(battery_v_max) AS battery_v_max, sum(battery_v_avg * battery_v_count) / nullif(sum(battery_v_count), 0) AS battery_v_avg, sum(battery_v_count)::bigint AS battery_v_count,
               min(rssi_dbm_min) AS rssi_dbm_min, max(rssi_dbm_max) AS rssi_dbm_max, sum(rssi_dbm_avg * rssi_dbm_count) / nullif(sum(rssi_dbm_count), 0) AS rssi_dbm_avg, sum(rssi_dbm_count)::bigint AS rssi_dbm_count
        FROM readings_hourly
        GROUP BY 1, unit_id, device_id
      WITH NO DATA
    $v$;
    PERFORM add_continuous_aggregate_policy('readings_daily', start_offset => interval '32 days', end_offset => interval '1 day', schedule_interval => interval '1 hour');
  ELSE
    IF NOT has_timescale THEN
      -- A plain table cannot become partitioned in place; it is empty here, so rebuild it.
      CREATE TABLE readings_partitioned (LIKE readings INCLUDING ALL) PARTITION BY RANGE (ts);
      DROP TABLE readings;
      ALTER TABLE readings_partitioned RENAME TO readings;
      ALTER TABLE readings RENAME CONSTRAINT readings_partitioned_pkey TO readings_pk;

      CREATE FUNCTION readings_ensure_partitions(ahead interval DEFAULT interval '28 days', behind interval DEFAULT interval '35 days')
      RETURNS integer LANGUAGE plpgsql AS $f$
      DECLARE
        week timestamptz := date_bin(interval '7 days', now() - behind, TIMESTAMPTZ '2000-01-03 00:00:00+00');
        part text;
        made integer := 0;
      BEGIN
        WHILE week < now() + ahead LOOP
          part := 'readings_p' || to_char(week AT TIME ZONE 'UTC', 'YYYYMMDD');
          IF to_regclass(part) IS NULL THEN
            BEGIN
              EXECUTE format('CREATE TABLE %I PARTITION OF readings FOR VALUES FROM (%L) TO (%L)', part, week, week + interval '7 days');
              made := made + 1;
            EXCEPTION WHEN duplicate_table THEN
              NULL; -- another process made it first
            END;
          END IF;
          week := week + interval '7 days';
        END LOOP;
        RETURN made;
      END
      $f$;

      -- Detaches (does not drop) every weekly partition that ends at or before cutoff, so it can
      -- be archived and dropped by an operator. Returns the detached tables' names.
      CREATE FUNCTION readings_detach_before(cutoff timestamptz)
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
            EXECUTE format('ALTER TABLE readings DETACH PARTITION %I', part);
            RETURN NEXT part;
          END IF;
        END LOOP;
      END
      $f$;

      PERFORM readings_ensure_partitions();
    END IF;

    CREATE VIEW readings_hourly AS
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
      GROUP BY 1, unit_id, device_id;
    CREATE VIEW readings_daily AS
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
      GROUP BY 1, unit_id, device_id;
  END IF;
END
$migration$;
