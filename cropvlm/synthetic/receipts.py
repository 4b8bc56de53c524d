"""Receipt layout families (SROIE-like shop receipts), one page, tall and narrow.

Gold fields follow templates/receipt.yaml: company, date, address, total. Each family
marks the rect of just the value text; labels ("TOTAL", "Date:") stay outside the box.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from cropvlm.synthetic import content
from cropvlm.synthetic.draw import GREY, WHITE, Flow, Sheet, font_name, sub_rect, union

MM = 72 / 25.4  # points per millimetre
_TOTAL_LABELS = ("TOTAL", "GRAND TOTAL", "TOTAL AMOUNT", "TOTAL (RM)", "NETT TOTAL", "Total",
                 "AMOUNT DUE", "TOTAL INCL. GST", "Total Sales")
_DATE_LABELS = ("Date:", "DATE", "DATE:", "Date/Time:", "TARIKH:", "Date :", "")
_TITLES = ("TAX INVOICE", "RECEIPT", "SIMPLIFIED TAX INVOICE", "CASH BILL", "OFFICIAL RECEIPT", "INVOICE")
_FOOTERS = ("THANK YOU. PLEASE COME AGAIN.", "GOODS SOLD ARE NOT RETURNABLE", "Thank you for shopping with us!",
            "*** THANK YOU ***", "KEEP THIS RECEIPT FOR EXCHANGE")


@dataclass
class ReceiptData:
    shop: content.Party
    cur: str
    style: str
    date_text: str
    time_text: str
    items: list[content.Item]
    subtotal: float
    tax_label: str
    tax: float
    total: float
    cash: float
    receipt_no: str
    cashier: str

    def money(self, value: float) -> str:
        return content.format_amount(value, self.style)


def receipt_data(rng: random.Random) -> ReceiptData:
    shop = content.party(rng, rng.choice(("my", "my", "my", "us", "uk")))
    items = content.items(rng, rng.randint(1, 9), big=False)
    subtotal = round(sum(i.amount for i in items), 2)
    rate = rng.choice((0.0, 0.06, 0.06, 0.1, 0.08))
    tax = round(subtotal * rate, 2)
    total = round(subtotal + tax, 2)
    cash = total if rng.random() < 0.3 else float(max(10, int(total / 10 + 1) * 10))
    return ReceiptData(
        shop, content.currency(rng, shop.region), content.amount_style(rng, shop.region),
        content.format_date(rng, content.date(rng), shop.region), content.time_text(rng), items,
        subtotal, rng.choice(("GST 6%", "SST", "Tax", "Service Tax", "GST")) if rate else "GST 0%",
        tax, total, cash, content.invoice_number(rng), rng.choice(("ADMIN", "CASHIER 01", "SITI", "JOHN", "001")),
    )


def _logo(sheet: Sheet, rng: random.Random, cx: float, top: float, name: str) -> float:
    """A filled shape with the shop's initials, like a printed logo; returns its height."""
    size = rng.uniform(18, 30)
    if rng.random() < 0.5:
        sheet.circle(cx, top + size / 2, size / 2, (0.1, 0.1, 0.1))
    else:
        sheet.rect((cx - size * 0.8, top, cx + size * 0.8, top + size), fill=(0.15, 0.15, 0.15))
    initials = "".join(w[0] for w in name.split()[:2] if w[0].isalpha()) or "X"
    sheet.text(cx, top + size * 0.25, initials, "hebo", size * 0.4, "center", WHITE)
    return size + 4


def _header(flow: Flow, rng: random.Random, d: ReceiptData, align: str) -> None:
    """Shop name, registration number, address lines and phone; marks company and address."""
    size = flow.fit(d.shop.name, bold=True, size=min(12, flow.size + rng.choice((1, 2, 3))))
    flow.sheet.mark("company", d.shop.name, flow.text(d.shop.name, align, bold=True, size=size))
    if rng.random() < 0.7:
        flow.text(d.shop.reg_no, align, size=flow.fit(d.shop.reg_no, size=flow.size * 0.9))
    rects = [flow.text(line, align, size=flow.fit(line)) for line in d.shop.address]
    flow.sheet.mark("address", " ".join(d.shop.address), union(*rects))
    flow.text(d.shop.phone, align)


def _date_line(flow: Flow, rng: random.Random, d: ReceiptData) -> None:
    label = rng.choice(_DATE_LABELS)
    if label == "TARIKH:" and d.shop.region != "my":  # Malay label on Malaysian slips only
        label = "Date:"
    prefix = f"{label} " if label else ""
    text = f"{prefix}{d.date_text} {d.time_text}" if rng.random() < 0.7 else f"{prefix}{d.date_text}"
    size = flow.fit(text)
    rect = flow.text(text, size=size)
    start = len(prefix)
    flow.sheet.mark("date", d.date_text,
                    sub_rect(rect, text, start, start + len(d.date_text), font_name(flow.family), size))


def _items(flow: Flow, d: ReceiptData, columns: bool) -> None:
    if columns:  # one row per item: qty, description, amount
        flow.text("QTY", advance=False, bold=True)
        flow.text("ITEM", x=flow.left + 22, advance=False, bold=True)
        flow.text("AMOUNT", "right", bold=True)
    for item in d.items:
        if columns:
            flow.text(str(item.qty), advance=False)
            flow.text(item.description[:24], x=flow.left + 22, advance=False)
            flow.text(d.money(item.amount), "right")
        else:  # thermal style: description, then "qty x price    amount"
            flow.text(item.description)
            flow.pair(f"  {item.qty} x {d.money(item.unit)}", d.money(item.amount))


def _total_line(flow: Flow, rng: random.Random, d: ReceiptData, label_x: float | None = None,
                label_align: str = "left") -> None:
    number = d.money(d.total)
    printed, start = content.with_currency(rng, number, d.cur)
    size = min(12, flow.size + rng.choice((0, 1, 2)))
    _, val = flow.pair(rng.choice(_TOTAL_LABELS), printed, bold=True, size=size, label_x=label_x,
                       label_align=label_align)
    rect = sub_rect(val, printed, start, start + len(number), font_name(flow.family, True), size)
    flow.sheet.mark("total", number, rect)


def thermal_centred(rng: random.Random, d: ReceiptData) -> Sheet:
    """80 mm till roll, monospace, everything centred; totals as label/value pairs."""
    sheet = Sheet(80 * MM, 0)
    flow = Flow(sheet, 5 * MM, 75 * MM, 6 * MM, rng.choice(("cour", "cour", "helv")), rng.uniform(6.5, 8.5))
    if rng.random() < 0.5:
        flow.gap(_logo(sheet, rng, 40 * MM, flow.y, d.shop.name))
    _header(flow, rng, d, "center")
    rule = rng.choice(("chars", "dash", "line"))
    flow.rule(rule)
    flow.text(rng.choice(_TITLES), "center", bold=True)
    flow.text(f"Receipt No: {d.receipt_no}")
    _date_line(flow, rng, d)
    flow.text(f"Cashier: {d.cashier}")
    flow.rule(rule)
    _items(flow, d, columns=False)
    flow.rule(rule)
    flow.pair("SUBTOTAL", d.money(d.subtotal))
    flow.pair(d.tax_label, d.money(d.tax))
    _total_line(flow, rng, d)
    flow.pair("CASH", d.money(d.cash))
    flow.pair("CHANGE", d.money(round(d.cash - d.total, 2)))
    flow.rule(rule)
    flow.text(rng.choice(_FOOTERS), "center", size=flow.fit(_FOOTERS[0]))
    sheet.height = flow.y + 8 * MM
    return sheet


def wide_left(rng: random.Random, d: ReceiptData) -> Sheet:
    """Wider slip, left-aligned header beside a logo, item table with columns and rules."""
    width = rng.uniform(95, 115) * MM
    sheet = Sheet(width, 0)
    family = rng.choice(("helv", "times", "cour"))
    flow = Flow(sheet, 8 * MM, width - 8 * MM, 8 * MM, family, rng.uniform(7, 9.5))
    # The logo is at most 48 pt wide (1.6 x 30 pt), centred 24 pt in: text starts right of it.
    logo_h = _logo(sheet, rng, flow.left + 24, flow.y, d.shop.name) if rng.random() < 0.6 else 0
    if logo_h:
        flow.left += 56
    _header(flow, rng, d, "left")
    flow.y = max(flow.y, flow.top + logo_h)
    flow.left = 8 * MM
    flow.rule("line", 1.0)
    flow.text(f"{rng.choice(_TITLES)}  {d.receipt_no}", bold=True)
    _date_line(flow, rng, d)
    flow.rule("line")
    _items(flow, d, columns=True)
    flow.rule("line")
    mid = flow.left + (flow.right - flow.left) * 0.45
    flow.pair("Sub Total", d.money(d.subtotal), label_x=mid)
    flow.pair(d.tax_label, d.money(d.tax), label_x=mid)
    flow.pair("Rounding Adj", "0.00", label_x=mid)
    _total_line(flow, rng, d, label_x=mid)
    flow.pair("Paid", d.money(d.cash), label_x=mid)
    flow.gap(4)
    flow.text(rng.choice(_FOOTERS), "center", color=GREY)
    sheet.height = flow.y + 10 * MM
    return sheet


def two_column_totals(rng: random.Random, d: ReceiptData) -> Sheet:
    """Narrow proportional-font receipt; totals labels right-aligned mid-slip; date at bottom."""
    sheet = Sheet(rng.uniform(72, 82) * MM, 0)
    flow = Flow(sheet, 5 * MM, sheet.width - 5 * MM, 7 * MM, rng.choice(("helv", "times")), rng.uniform(7, 9))
    _header(flow, rng, d, "center")
    flow.rule("dash")
    _items(flow, d, columns=rng.random() < 0.5)
    flow.rule("line")
    mid = flow.left + (flow.right - flow.left) * 0.62
    flow.text(f"Items: {len(d.items)}", advance=False)  # shares the subtotal's line
    flow.pair("Subtotal", d.money(d.subtotal), label_x=mid, label_align="right")
    flow.pair(d.tax_label, d.money(d.tax), label_x=mid, label_align="right")
    _total_line(flow, rng, d, label_x=mid, label_align="right")
    flow.pair("Tendered", d.money(d.cash), label_x=mid, label_align="right")
    flow.rule("dash")
    flow.text(f"#{d.receipt_no}  {d.cashier}", "center")
    _date_line(flow, rng, d)
    flow.text(rng.choice(_FOOTERS), "center", size=flow.fit(_FOOTERS[0]))
    sheet.height = flow.y + 8 * MM
    return sheet


LAYOUTS = (thermal_centred, wide_left, two_column_totals)


def draw_receipt(rng: random.Random) -> Sheet:
    layout = rng.choice(LAYOUTS)
    return layout(rng, receipt_data(rng))
