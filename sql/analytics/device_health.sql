-- Question: which devices have gone silent, and how healthy is each device's stream?
-- Per device (iot.readings FINAL): when it was last seen (device time and receive time),
-- seconds since then (against now()), status `silent` when that exceeds `silent_minutes`
-- else `ok`, readings and sensors seen, readings missing by sequence number (gaps in each
-- sensor's seq) and the mean delay from device to feedhouse. Silent devices sort first.
-- param silent_minutes UInt32 = 5: a device not heard from for longer is silent
SELECT
    device_id,
    any(site) AS site,
    max(last_ts) AS last_seen,
    max(last_received) AS last_received,
    round(dateDiff('millisecond', last_seen, now64(3)) / 1000, 1) AS silent_for_s,
    if(silent_for_s > {silent_minutes:UInt32} * 60, 'silent', 'ok') AS status,
    sum(n) AS readings,
    count() AS sensors,
    sum(missing) AS missing_by_seq,
    round(sum(delay_sum_s) / sum(n), 4) AS mean_delay_s
FROM
(
    SELECT
        device_id,
        sensor,
        any(site) AS site,
        max(device_ts) AS last_ts,
        max(received_ts) AS last_received,
        count() AS n,
        -- sequences run per device and sensor; a sensor without seq (all 0) has no gaps
        if(max(seq) = 0, 0, max(seq) - min(seq) + 1 - uniqExact(seq)) AS missing,
        sum(dateDiff('microsecond', device_ts, received_ts)) / 1e6 AS delay_sum_s
    FROM iot.readings FINAL
    GROUP BY device_id, sensor
)
GROUP BY device_id
ORDER BY status = 'silent' DESC, last_seen, device_id
