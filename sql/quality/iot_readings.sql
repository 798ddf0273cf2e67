-- Window read for the iot_readings suite (quality/suites/iot_readings.json).
-- range_min/range_max: the sensor type's physical range from quality.sensor_ranges
-- (NULL for a type without one). seq_gap: seq minus the previous seq of the same device
-- and sensor (NULL where devices send no sequence, seq = 0). future_s: how far device_ts
-- lies after the moment the check ran ({now}).
SELECT
    nullIf(device_id, '') AS device_id,
    nullIf(sensor, '') AS sensor,
    seq,
    value,
    device_ts,
    if(has({sensors:Array(String)}, sensor),
       {range_mins:Array(Float64)}[indexOf({sensors:Array(String)}, sensor)], NULL) AS range_min,
    if(has({sensors:Array(String)}, sensor),
       {range_maxs:Array(Float64)}[indexOf({sensors:Array(String)}, sensor)], NULL) AS range_max,
    if(seq = 0, NULL,
       toInt64(seq) - lagInFrame(toNullable(toInt64(seq))) OVER by_device) AS seq_gap,
    dateDiff('microsecond', {now:DateTime64(6, 'UTC')}, device_ts) / 1e6 AS future_s
FROM iot.readings
WHERE device_ts >= {start:DateTime64(6, 'UTC')} AND device_ts < {end:DateTime64(6, 'UTC')}
WINDOW by_device AS (PARTITION BY device_id, sensor, seq = 0 ORDER BY seq
                     ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
ORDER BY device_id, sensor, seq, device_ts
