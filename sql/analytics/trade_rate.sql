-- Question: how many trades per second does each venue/symbol see, and how bursty are they?
-- Per venue and symbol over its active span (first to last trade, empty seconds count as 0):
-- mean and peak trades per second, peak-to-mean ratio, the coefficient of variation of the
-- per-second counts (0 = perfectly even, >1 = bursty) and the burstiness B = (sd - mean) /
-- (sd + mean) of the gaps between consecutive trades (-1 periodic, 0 Poisson, towards 1 bursty).
-- param window_minutes UInt32 = 60: minutes back from the newest trade
WITH trades AS
(
    SELECT venue, symbol, exchange_ts
    FROM market.trades FINAL
    WHERE exchange_ts > (SELECT max(exchange_ts) FROM market.trades) - toIntervalMinute({window_minutes:UInt32})
),
per_second AS
(
    SELECT venue, symbol, toStartOfSecond(exchange_ts) AS second, count() AS n
    FROM trades
    GROUP BY venue, symbol, second
),
rates AS
(
    SELECT
        venue,
        symbol,
        sum(n) AS trades,
        dateDiff('second', min(second), max(second)) + 1 AS span_s,
        trades / span_s AS mean_per_s,
        max(n) AS peak_per_s,
        -- population variance over every second of the span; empty seconds add 0 to sum(n^2)
        sqrt(greatest(sum(n * n) / span_s - mean_per_s * mean_per_s, 0)) AS sd_per_s
    FROM per_second
    GROUP BY venue, symbol
),
gaps AS
(
    SELECT venue, symbol, avg(gap_s) AS mean_gap_s, stddevPop(gap_s) AS sd_gap_s
    FROM
    (
        SELECT
            venue,
            symbol,
            dateDiff('microsecond',
                lagInFrame(exchange_ts) OVER w, exchange_ts) / 1e6 AS gap_s,
            row_number() OVER w AS rn
        FROM trades
        WINDOW w AS (PARTITION BY venue, symbol ORDER BY exchange_ts
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    )
    WHERE rn > 1
    GROUP BY venue, symbol
)
SELECT
    r.venue AS venue,
    r.symbol AS symbol,
    r.trades AS trades,
    r.span_s AS span_s,
    round(r.mean_per_s, 4) AS mean_per_s,
    r.peak_per_s AS peak_per_s,
    round(r.peak_per_s / r.mean_per_s, 3) AS peak_to_mean,
    round(r.sd_per_s / r.mean_per_s, 4) AS cv_per_s,
    round((g.sd_gap_s - g.mean_gap_s) / nullIf(g.sd_gap_s + g.mean_gap_s, 0), 4) AS burstiness
FROM rates AS r
LEFT JOIN gaps AS g ON g.venue = r.venue AND g.symbol = r.symbol
ORDER BY trades DESC, venue, symbol
