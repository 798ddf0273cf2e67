-- Question: what are each sensor's moving average and standard deviation, and which readings broke away?
-- Per device and sensor (iot.readings FINAL, ordered by device time): the moving average
-- and standard deviation over the last `window_rows` readings at the latest reading, and
-- the anomalies: readings more than `z` standard deviations from the mean of the
-- `window_rows` readings before them (only once that many exist and they vary).
-- param window_rows UInt32 = 10: readings in the moving window
-- param z Float64 = 3: anomaly threshold in standard deviations
-- param window_minutes UInt32 = 60: minutes back from the newest reading
SELECT
    device_id,
    sensor,
    any(unit) AS unit,
    count() AS readings,
    max(device_ts) AS last_ts,
    argMax(value, device_ts) AS last_value,
    round(argMax(moving_avg, device_ts), 6) AS moving_avg,
    round(argMax(moving_stddev, device_ts), 6) AS moving_stddev,
    min(value) AS min_value,
    max(value) AS max_value,
    countIf(prior_n = {window_rows:UInt32} AND prior_sd > 0
            AND abs(value - prior_avg) > {z:Float64} * prior_sd) AS anomalies
FROM
(
    SELECT
        device_id,
        sensor,
        unit,
        device_ts,
        value,
        avg(value) OVER trailing AS moving_avg,
        stddevPop(value) OVER trailing AS moving_stddev,
        avg(value) OVER prior AS prior_avg,
        stddevPop(value) OVER prior AS prior_sd,
        count() OVER prior AS prior_n
    FROM iot.readings FINAL
    WHERE device_ts > (SELECT max(device_ts) FROM iot.readings) - toIntervalMinute({window_minutes:UInt32})
    WINDOW
        trailing AS (PARTITION BY device_id, sensor ORDER BY device_ts, seq
                     ROWS BETWEEN {window_rows:UInt32} - 1 PRECEDING AND CURRENT ROW),
        prior AS (PARTITION BY device_id, sensor ORDER BY device_ts, seq
                  ROWS BETWEEN {window_rows:UInt32} PRECEDING AND 1 PRECEDING)
)
GROUP BY device_id, sensor
ORDER BY device_id, sensor
