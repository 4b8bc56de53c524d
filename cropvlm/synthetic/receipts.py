"""Receipt layout families (SROIE-like shop receipts), one page, tall and narrow.

Gold fields follow templates/receipt.yaml: company, date, address, total. Each family
marks the rect of just the value text; labels ("TOTAL", "Date:") stay outside the box.
Labels come from the receipt's language table (languages.py).
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

from cropvlm.synthetic import content, locales
from cropvlm.synthetic.draw import GREY, WHITE, Flow, Sheet, font_name, sub_rect, union
from cropvlm.synthetic.languages import RECEIPT, Table, pick

MM = 72 / 25.4  # points per millimetre


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
    words: Table = dataclasses.field(default_factory=lambda: RECEIPT["en"])
    loc: locales.Locale | None = None  # None: the English documents' regions (content.py)

    def money(self, value: float) -> str:
        return content.format_amount(value, self.style)

    def priced(self, rng: random.Random, number: str) -> tuple[str, int]:
        """The amount with its currency, and where the bare number starts."""
        return locales.priced(rng, number, self.cur, self.loc)


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
        subtotal, pick(rng, RECEIPT["en"]["tax"]) if rate else RECEIPT["en"]["tax_zero"][0],
        tax, total, cash, content.invoice_number(rng), pick(rng, RECEIPT["en"]["cashiers"]),
    )


def world_receipt_data(rng: random.Random, language: str) -> ReceiptData:
    """A shop's till slip in a country speaking `language`; prices include VAT, as in the EU."""
    loc = locales.locale(rng, language)
    shop = locales.party(rng, loc, shop=True)
    items = locales.groceries(rng, rng.randint(1, 9), loc)
    total = round(sum(i.amount for i in items), 2)
    rate = rng.choice(loc.vat_rates[1:] or loc.vat_rates)  # shops sell at the reduced rate mostly
    tax = round(total * rate / (100 + rate), 2)  # VAT included in the total
    cash = total if rng.random() < 0.4 else float(max(5, int(total / 5 + 1) * 5))
    words, day = RECEIPT[language], content.date(rng)
    return ReceiptData(
        shop, loc.currency, rng.choice(loc.amount_styles), locales.format_date(day, loc, locales.date_format(rng, loc)),
        f"{rng.randint(7, 21):02d}:{rng.randint(0, 59):02d}", items, total,  # 24-hour clocks
        pick(rng, words["tax"]).format(rate=locales.rate_text(rate, loc)),
        tax, total, cash, str(rng.randint(1000, 999999)), pick(rng, words["cashiers"]), words, loc)


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
    label = pick(rng, d.words["date"])
    if label == "TARIKH:" and d.shop.region != "my":  # Malay label on Malaysian slips only
        label = "Date:"
    prefix = f"{label} " if label else ""
    text = f"{prefix}{d.date_text} {d.time_text}" if rng.random() < 0.7 else f"{prefix}{d.date_text}"
    size = flow.fit(text)
    rect = flow.text(text, size=size)
    start = len(prefix)
    flow.sheet.mark("date", d.date_text,
                    sub_rect(rect, text, start, start + len(d.date_text), font_name(flow.family), size))


def _items(flow: Flow, rng: random.Random, d: ReceiptData, columns: bool) -> None:
    if columns:  # one row per item: qty, description, amount
        qty, item, amount = pick(rng, d.words["columns"]).split("|")
        flow.text(qty, advance=False, bold=True)
        flow.text(item, x=flow.left + 22, advance=False, bold=True)
        flow.text(amount, "right", bold=True)
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
    printed, start = d.priced(rng, number)
    size = min(12, flow.size + rng.choice((0, 1, 2)))
    _, val = flow.pair(pick(rng, d.words["total"]), printed, bold=True, size=size, label_x=label_x,
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
    w = d.words
    flow.text(pick(rng, w["title"]), "center", bold=True)
    flow.text(f"{pick(rng, w['receipt_no'])} {d.receipt_no}")
    _date_line(flow, rng, d)
    flow.text(f"{pick(rng, w['cashier'])} {d.cashier}")
    flow.rule(rule)
    _items(flow, rng, d, columns=False)
    flow.rule(rule)
    flow.pair(pick(rng, w["subtotal"]), d.money(d.subtotal))
    flow.pair(d.tax_label, d.money(d.tax))
    _total_line(flow, rng, d)
    flow.pair(pick(rng, w["cash"]), d.money(d.cash))
    flow.pair(pick(rng, w["change"]), d.money(round(d.cash - d.total, 2)))
    flow.rule(rule)
    flow.text(pick(rng, w["footer"]), "center", size=flow.fit(w["footer"][0]))
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
    w = d.words
    flow.text(f"{pick(rng, w['title'])}  {d.receipt_no}", bold=True)
    _date_line(flow, rng, d)
    flow.rule("line")
    _items(flow, rng, d, columns=True)
    flow.rule("line")
    mid = flow.left + (flow.right - flow.left) * 0.45
    flow.pair(pick(rng, w["subtotal_wide"]), d.money(d.subtotal), label_x=mid)
    flow.pair(d.tax_label, d.money(d.tax), label_x=mid)
    flow.pair(pick(rng, w["rounding"]), d.money(0.0), label_x=mid)
    _total_line(flow, rng, d, label_x=mid)
    flow.pair(pick(rng, w["paid"]), d.money(d.cash), label_x=mid)
    flow.gap(4)
    flow.text(pick(rng, w["footer"]), "center", color=GREY)
    sheet.height = flow.y + 10 * MM
    return sheet


def two_column_totals(rng: random.Random, d: ReceiptData) -> Sheet:
    """Narrow proportional-font receipt; totals labels right-aligned mid-slip; date at bottom."""
    sheet = Sheet(rng.uniform(72, 82) * MM, 0)
    flow = Flow(sheet, 5 * MM, sheet.width - 5 * MM, 7 * MM, rng.choice(("helv", "times")), rng.uniform(7, 9))
    _header(flow, rng, d, "center")
    w = d.words
    flow.rule("dash")
    _items(flow, rng, d, columns=rng.random() < 0.5)
    flow.rule("line")
    mid = flow.left + (flow.right - flow.left) * 0.62
    flow.text(f"{pick(rng, w['items_count'])} {len(d.items)}", advance=False)  # shares the subtotal's line
    flow.pair(pick(rng, w["subtotal_slip"]), d.money(d.subtotal), label_x=mid, label_align="right")
    flow.pair(d.tax_label, d.money(d.tax), label_x=mid, label_align="right")
    _total_line(flow, rng, d, label_x=mid, label_align="right")
    flow.pair(pick(rng, w["tendered"]), d.money(d.cash), label_x=mid, label_align="right")
    flow.rule("dash")
    flow.text(f"#{d.receipt_no}  {d.cashier}", "center")
    _date_line(flow, rng, d)
    flow.text(pick(rng, w["footer"]), "center", size=flow.fit(w["footer"][0]))
    sheet.height = flow.y + 8 * MM
    return sheet


LAYOUTS = (thermal_centred, wide_left, two_column_totals)
