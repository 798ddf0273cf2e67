"""An independent count of the level updates in recorded book frames (plain json).

Shared by the parser tests and the capture tests; it never calls feedhouse code, so it
checks the book parsers from outside."""

from __future__ import annotations


def independent_book_count(messages) -> tuple[int, float, list[int]]:
    """(level updates, sum(price * native size), Binance and Deribit gaps) of received JSON messages
    (dicts), counted with plain Python: no feedhouse code. BitMEX L2 rows without a price
    take their id's from the partial/insert; a row of an unknown id counts as no level."""
    levels, notional, gaps, last, bitmex_ids = 0, 0.0, [], {}, {}
    for msg in messages:
        data = msg["data"] if "stream" in msg else msg
        if data.get("e") == "depthUpdate":
            sides = data["b"] + data["a"]
            prev = data["pu"] if "pu" in data else data["U"] - 1
            if data["s"] in last and prev != last[data["s"]]:
                gaps.append(prev - last[data["s"]])
            last[data["s"]] = data["u"]
        elif msg.get("arg", {}).get("channel") == "books" and "data" in msg:
            sides = [lv for item in msg["data"] for lv in item["bids"] + item["asks"]]
        elif msg.get("type") == "snapshot" and "product_id" in msg:
            sides = msg["bids"] + msg["asks"]
        elif msg.get("type") == "l2update":
            sides = [c[1:] for c in msg["changes"]]
        elif str(msg.get("topic")).startswith("orderBookL2"):
            data = msg["data"]
            if msg["type"] == "snapshot":
                sides = [(e["price"], e["size"]) for e in data.get("order_book", data)]
            else:
                sides = [(e["price"], e.get("size", 0) if k != "delete" else 0)
                         for k in ("delete", "update", "insert") for e in data[k]]
        elif msg.get("method") == "subscription" and msg["params"]["channel"].startswith("book."):
            data = msg["params"]["data"]  # Deribit: [action, price, amount], delete = 0
            sides = [(p, 0 if a == "delete" else s) for a, p, s in data["bids"] + data["asks"]]
            name = data["instrument_name"]
            if data["type"] != "snapshot" and name in last and data["prev_change_id"] != last[name]:
                gaps.append(data["prev_change_id"] - last[name])
            last[name] = data["change_id"]
        elif msg.get("table") == "orderBookL2":
            action, sides = msg["action"], []
            for e in msg["data"]:  # BitMEX: id -> price per symbol, delete = 0
                ids = bitmex_ids.setdefault(e["symbol"], {})
                price = ids.pop(e["id"], e.get("price")) if action == "delete" else \
                    e.get("price", ids.get(e["id"]))
                if action in ("partial", "insert"):
                    ids[e["id"]] = price
                if price is not None:
                    sides.append((price, 0 if action == "delete" else e["size"]))
        elif msg.get("channel") == "book" and "data" in msg:  # Kraken v2: {price, qty}, qty 0 = delete
            sides = [(lv["price"], lv["qty"]) for item in msg["data"] for lv in item["bids"] + item["asks"]]
        else:
            continue
        levels += len(sides)
        notional += sum(float(p) * float(s) for p, s, *_ in sides)
    return levels, notional, gaps
