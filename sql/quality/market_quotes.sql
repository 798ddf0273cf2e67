-- Window read for the market_quotes suite (quality/suites/market_quotes.json).
SELECT
    nullIf(venue, '') AS venue,
    nullIf(symbol, '') AS symbol,
    bid_price,
    bid_size,
    ask_price,
    ask_size,
    exchange_ts
FROM market.quotes
WHERE exchange_ts >= {start:DateTime64(6, 'UTC')} AND exchange_ts < {end:DateTime64(6, 'UTC')}
  AND ({venue:String} = '' OR venue = {venue:String})
ORDER BY venue, symbol, exchange_ts
