-- Question: how wide is the best bid/ask spread per venue and symbol?
-- From market.quotes: spread = ask - bid, in quote currency and in basis points of the mid
-- price ((bid + ask) / 2), with mean and p50/p90/p99; crossed or locked books (ask <= bid)
-- and one-sided quotes are counted apart and left out of the statistics.
-- param window_minutes UInt32 = 60: minutes back from the newest quote
SELECT
    venue,
    symbol,
    count() AS quotes,
    countIf(ask_price <= bid_price) AS crossed_or_locked,
    countIf(bid_price > 0 AND ask_price > bid_price) AS valid,
    avgIf(ask_price - bid_price, bid_price > 0 AND ask_price > bid_price) AS mean_spread,
    minIf(ask_price - bid_price, bid_price > 0 AND ask_price > bid_price) AS min_spread,
    maxIf(ask_price - bid_price, bid_price > 0 AND ask_price > bid_price) AS max_spread,
    avgIf(bps, bid_price > 0 AND ask_price > bid_price) AS mean_bps,
    quantilesExactIf(0.5, 0.9, 0.99)(bps, bid_price > 0 AND ask_price > bid_price) AS bps_p50_p90_p99
FROM
(
    SELECT
        venue,
        symbol,
        bid_price,
        ask_price,
        (ask_price - bid_price) / ((ask_price + bid_price) / 2) * 10000 AS bps
    FROM market.quotes FINAL
    WHERE exchange_ts > (SELECT max(exchange_ts) FROM market.quotes) - toIntervalMinute({window_minutes:UInt32})
)
GROUP BY venue, symbol
ORDER BY venue, symbol
