"""Invoice data and layout families on A4 or US Letter; long invoices continue onto a second page.

Gold fields follow templates/invoice.yaml: invoice_number, invoice_date, total_amount,
vendor. Header fields are on page 1, the total on the last page; distractors (due date,
PO number, subtotal, tax, the vendor named again in the footer) surround them. Labels come
from the document's language table (languages.py); `letterheads.py` adds European layouts.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

from cropvlm.synthetic import content, locales
from cropvlm.synthetic.draw import BLACK, GREY, WHITE, Flow, Sheet, font_name, line_height, sub_rect
from cropvlm.synthetic.languages import INVOICE, Table, pick

PAGE_SIZES = ((595.28, 841.89), (612.0, 792.0))  # A4, US Letter, in points


@dataclass
class InvoiceData:
    vendor: content.Party
    customer: content.Party
    number: str
    date_text: str
    due_text: str
    po: str
    cur: str
    style: str
    items: list[content.Item]
    subtotal: float
    tax_label: str
    tax: float
    shipping: float
    total: float
    words: Table = dataclasses.field(default_factory=lambda: INVOICE["en"])
    loc: locales.Locale | None = None  # None: the English documents' regions (content.py)
    delivery_text: str = ""  # a distractor date row when set

    def money(self, value: float) -> str:
        return content.format_amount(value, self.style)

    def priced(self, rng: random.Random, number: str) -> tuple[str, int]:
        """The amount with its currency, and where the bare number starts."""
        return locales.priced(rng, number, self.cur, self.loc)


def invoice_data(rng: random.Random, multi_page: bool) -> InvoiceData:
    vendor = content.party(rng, rng.choice(("us", "us", "de", "uk", "my")))
    day = content.date(rng)
    items = content.items(rng, rng.randint(42, 60) if multi_page else rng.randint(2, 10), big=True)
    subtotal = round(sum(i.amount for i in items), 2)
    rate = rng.choice((0.0, 0.05, 0.06, 0.19, 0.2, 0.0825))
    tax = round(subtotal * rate, 2)
    shipping = rng.choice((0.0, 0.0, round(rng.uniform(5, 80), 2)))
    return InvoiceData(
        vendor, content.party(rng), content.invoice_number(rng), content.format_date(rng, day, vendor.region),
        content.format_date(rng, day.fromordinal(day.toordinal() + rng.choice((14, 30, 45, 60))), vendor.region),
        f"PO-{rng.randint(1000, 99999)}", content.currency(rng, vendor.region), content.amount_style(rng, vendor.region),
        items, subtotal, pick(rng, INVOICE["en"]["tax"]).format(rate=f"{rate * 100:g}"), tax, shipping,
        round(subtotal + tax + shipping, 2))


def world_invoice_data(rng: random.Random, multi_page: bool, language: str) -> InvoiceData:
    """An invoice of a company in a country speaking `language`, to a customer there (mostly)."""
    loc = locales.locale(rng, language)
    vendor = locales.party(rng, loc)
    customer = locales.party(rng, loc if rng.random() < 0.85 else locales.locale(rng, language))
    day = content.date(rng)
    later = [day.fromordinal(day.toordinal() + k) for k in (rng.choice((8, 14, 30, 60)), -rng.randint(0, 20))]
    items = locales.services(rng, rng.randint(42, 60) if multi_page else rng.randint(1, 9), loc)
    subtotal = round(sum(i.amount for i in items), 2)
    rate = rng.choice(loc.vat_rates)
    tax = round(subtotal * rate / 100, 2)
    shipping = rng.choice((0.0, 0.0, 0.0, round(rng.uniform(5, 60), 2)))
    words, dates = INVOICE[language], locales.date_format(rng, loc)
    return InvoiceData(
        vendor, customer, locales.invoice_number(rng, loc, day.year), locales.format_date(day, loc, dates),
        locales.format_date(later[0], loc, dates), f"{rng.choice(('PO-', 'B', '', 'ORD'))}{rng.randint(1000, 99999)}",
        locales.currency(rng, loc), rng.choice(loc.amount_styles), items, subtotal,
        pick(rng, words["tax"]).format(rate=locales.rate_text(rate, loc)), tax, shipping,
        round(subtotal + tax + shipping, 2), words, loc,
        locales.format_date(later[1], loc, dates) if rng.random() < 0.4 else "")


def meta_rows(rng: random.Random, d: InvoiceData, number: bool = True) -> list[tuple[str, str, str | None]]:
    """(label, value, gold field or None) rows for the header block, with distractors.

    `number=False` when the layout prints the invoice number elsewhere (in its heading)."""
    w = d.words
    rows = [(pick(rng, w["number"]), d.number, "invoice_number"),
            (pick(rng, w["date"]), d.date_text, "invoice_date"),
            (pick(rng, w["due"]), d.due_text, None)]
    if d.delivery_text:
        rows.append((pick(rng, w["delivery"]), d.delivery_text, None))
    if rng.random() < 0.6:
        rows.append((pick(rng, w["reference"]), d.po, None))
    if rng.random() < 0.4:
        rows.append((pick(rng, w["customer_id"]), f"C{rng.randint(1000, 9999)}", None))
    head, tail = rows[:2], rows[2:]
    rng.shuffle(head)
    return [row for row in head if number or row[2] != "invoice_number"] + tail


def vendor_block(flow: Flow, rng: random.Random, d: InvoiceData, align: str = "left") -> None:
    size = flow.fit(d.vendor.name, True, rng.uniform(10.5, 12))
    flow.sheet.mark("vendor", d.vendor.name, flow.text(d.vendor.name, align, bold=True, size=size))
    for line in (*d.vendor.address, d.vendor.phone, d.vendor.reg_no)[: rng.randint(3, 5)]:
        flow.text(line, align, size=flow.size * 0.95)


def bill_to_block(flow: Flow, rng: random.Random, d: InvoiceData) -> None:
    flow.text(pick(rng, d.words["bill_to"]), bold=True)
    for line in (d.customer.name, *d.customer.address):
        flow.text(line)


def logo(sheet: Sheet, rng: random.Random, x: float, top: float, name: str) -> float:
    """Filled block or circle with initials, or a coloured bar; returns the height used."""
    size = rng.uniform(26, 40)
    color = rng.choice(((0.12, 0.25, 0.5), (0.6, 0.1, 0.1), (0.1, 0.1, 0.1), (0.1, 0.4, 0.3)))
    if rng.random() < 0.5:
        sheet.circle(x + size / 2, top + size / 2, size / 2, color)
        cx = x + size / 2
    else:
        sheet.rect((x, top, x + size * 1.4, top + size), fill=color)
        cx = x + size * 0.7
    initials = "".join(w[0] for w in name.split()[:2] if w[0].isalpha()) or "X"
    sheet.text(cx, top + size * 0.28, initials, "hebo", size * 0.38, "center", WHITE)
    return size + 8


def item_table(flow: Flow, rng: random.Random, d: InvoiceData, grid: bool, shade: bool) -> None:
    """Line items: description, qty, unit price, amount; header repeats after a page break."""
    width = flow.right - flow.left
    col_qty, col_unit, col_amt = flow.left + width * 0.58, flow.left + width * 0.78, flow.right - 4
    row_h = flow.size * rng.uniform(1.75, 2.1)  # a row spans [y, y + row_h]; text centred in it
    pad = (row_h - line_height(font_name(flow.family), flow.size)) / 2
    band = rng.choice(((0.85, 0.85, 0.85), (0.15, 0.2, 0.35), None))
    ink = WHITE if band and band[0] < 0.5 else BLACK
    columns = pick(rng, d.words["columns"]).split("|")
    continued = pick(rng, d.words["continued"]).format(number=d.number)

    def header(f: Flow) -> None:
        if band:
            f.sheet.rect((f.left, f.y, f.right, f.y + row_h), fill=band)
        for text, x, align in zip(columns, (f.left + 4, col_qty, col_unit, col_amt),
                                     ("left", "right", "right", "right")):
            f.sheet.text(x, f.y + pad, text, font_name(f.family, True), f.size, align, ink)
        f.y += row_h
        f.sheet.line(f.left, f.y, f.right, f.y, 0.8)

    header(flow)
    flow.on_new_page = lambda f: (f.text(continued, bold=True), f.gap(6), header(f))
    font = font_name(flow.family)
    for i, item in enumerate(d.items):
        flow.ensure(row_h)
        if shade and i % 2:
            flow.sheet.rect((flow.left, flow.y, flow.right, flow.y + row_h), fill=(0.94, 0.94, 0.94))
        for text, x, align in ((item.description, flow.left + 4, "left"), (str(item.qty), col_qty, "right"),
                               (d.money(item.unit), col_unit, "right"), (d.money(item.amount), col_amt, "right")):
            flow.sheet.text(x, flow.y + pad, text, font, flow.size, align)
        flow.y += row_h
        if grid:
            flow.sheet.line(flow.left, flow.y, flow.right, flow.y, 0.3, GREY)
    flow.on_new_page = None
    flow.sheet.line(flow.left, flow.y, flow.right, flow.y, 0.8)
    flow.gap(8)


def totals_block(flow: Flow, rng: random.Random, d: InvoiceData, boxed: bool = False) -> None:
    flow.ensure(flow.size * 9)  # keep the totals block together
    label_x = flow.left + (flow.right - flow.left) * rng.uniform(0.55, 0.65)
    flow.pair(pick(rng, d.words["subtotal"]), d.money(d.subtotal), label_x=label_x)
    flow.pair(d.tax_label, d.money(d.tax), label_x=label_x)
    if d.shipping:
        flow.pair(pick(rng, d.words["shipping"]), d.money(d.shipping), label_x=label_x)
    number = d.money(d.total)
    printed, start = d.priced(rng, number)
    size = min(12, flow.size + rng.choice((1, 2, 3)))
    flow.gap(3)
    top = flow.y
    _, val = flow.pair(pick(rng, d.words["total"]), printed, bold=True, size=size, label_x=label_x)
    if boxed:
        flow.sheet.rect((label_x - 6, top - 4, flow.right + 4, flow.y), color=BLACK, width=1.0)
    flow.sheet.mark("total_amount", number,
                    sub_rect(val, printed, start, start + len(number), font_name(flow.family, True), size))
    flow.gap(flow.size * 2)


def closing_lines(flow: Flow, rng: random.Random, d: InvoiceData) -> None:
    lines = [pick(rng, d.words["thanks"])]
    if rng.random() < 0.6:
        lines.append(pick(rng, d.words["pay_to"]).format(vendor=d.vendor.name, account=rng.randint(10**9, 10**10 - 1)))
    for line in lines:
        flow.text(line, size=flow.fit(line, size=flow.size * 0.9), color=GREY)


def meta_column(sheet: Sheet, rng: random.Random, d: InvoiceData, x: float, right: float, top: float,
                family: str, size: float, number: bool = True) -> float:
    """Label/value rows; values left-aligned at a tab or right-aligned at `right`. Returns bottom."""
    flow = Flow(sheet, x, right, top, family, size, 1.5)
    tab = x + rng.uniform(75, 95) if rng.random() < 0.5 else None
    font = font_name(family)
    for label, value, field in meta_rows(rng, d, number):
        if tab:
            flow.text(label, bold=True, advance=False)
            rect = flow.text(value, x=tab)
        else:
            _, rect = flow.pair(label, value)
        if field:
            sheet.mark(field, value, sub_rect(rect, value, 0, len(value), font, size))
    return flow.y


def classic(rng: random.Random, d: InvoiceData, size: tuple[float, float]) -> Sheet:
    """Vendor top-left with logo, big title and meta block top-right, bill-to, table, totals."""
    sheet = Sheet(*size)
    margin, family, fs = rng.uniform(36, 56), rng.choice(("helv", "times", "helv")), rng.uniform(7.5, 9.5)
    flow = Flow(sheet, margin, size[0] - margin, margin, family, fs, 1.35, size[1] - margin - 20)
    if rng.random() < 0.6:
        flow.gap(logo(sheet, rng, margin, margin, d.vendor.name))
    vendor_block(flow, rng, d)
    sheet.text(flow.right, margin, pick(rng, d.words["title"]), font_name(family, True), rng.uniform(16, 22), "right",
               rng.choice((BLACK, (0.12, 0.25, 0.5))))
    meta_bottom = meta_column(sheet, rng, d, flow.right - 190, flow.right, margin + 34, family, fs)
    flow.y = max(flow.y, meta_bottom) + 14
    bill_to_block(flow, rng, d)
    flow.gap(14)
    item_table(flow, rng, d, grid=rng.random() < 0.5, shade=rng.random() < 0.3)
    totals_block(flow, rng, d)
    closing_lines(flow, rng, d)
    return sheet


def letterhead(rng: random.Random, d: InvoiceData, size: tuple[float, float]) -> Sheet:
    """Centred letterhead and rule, then title + meta side by side, shaded table."""
    sheet = Sheet(*size)
    margin, family, fs = rng.uniform(40, 60), rng.choice(("times", "helv", "cour")), rng.uniform(7, 9)
    flow = Flow(sheet, margin, size[0] - margin, margin, family, fs, 1.35, size[1] - margin - 20)
    vendor_block(flow, rng, d, "center")
    flow.rule("line", rng.uniform(1.0, 2.5))
    flow.gap(6)
    top = flow.y
    flow.text(pick(rng, d.words["title"]), bold=True, size=min(12, fs * 1.5))
    flow.gap(4)
    bill_to_block(flow, rng, d)
    meta_bottom = meta_column(sheet, rng, d, flow.left + (flow.right - flow.left) * 0.55, flow.right,
                              top, family, fs)
    flow.y = max(flow.y, meta_bottom) + 16
    item_table(flow, rng, d, grid=False, shade=True)
    totals_block(flow, rng, d)
    closing_lines(flow, rng, d)
    return sheet


def boxed(rng: random.Random, d: InvoiceData, size: tuple[float, float]) -> Sheet:
    """Stroked blocks: vendor box, a grid of meta cells (label above value), gridded table, boxed total."""
    sheet = Sheet(*size)
    margin, family, fs = rng.uniform(36, 50), rng.choice(("helv", "cour", "times")), rng.uniform(7, 9)
    flow = Flow(sheet, margin + 6, size[0] / 2 - 10, margin + 6, family, fs, 1.35)
    vendor_block(flow, rng, d)
    sheet.rect((margin, margin, size[0] / 2 - 4, flow.y + 4), color=BLACK, width=0.8)
    # Meta grid: two columns of cells on the right half, label small and grey above the value.
    cells = [(label.rstrip(":").upper(), value, field) for label, value, field in meta_rows(rng, d)][:4]
    cell_w, cell_h = (size[0] / 2 - margin) / 2, fs * 3.2
    x0 = size[0] / 2 + 4
    for i, (label, value, field) in enumerate(cells):
        cx, cy = x0 + (i % 2) * cell_w, margin + (i // 2) * cell_h
        sheet.rect((cx, cy, cx + cell_w - 2, cy + cell_h - 2), color=BLACK, width=0.6)
        sheet.text(cx + 4, cy + 3, label, font_name(family), fs * 0.8, color=GREY)
        rect = sheet.text(cx + 4, cy + 3 + fs * 1.2, value, font_name(family, True), fs)
        if field:
            sheet.mark(field, value, rect)
    flow = Flow(sheet, margin, size[0] - margin, max(flow.y + 14, margin + 2 * cell_h + 14), family, fs, 1.35,
                size[1] - margin - 20)
    flow.page_top = margin
    flow.left += 6
    bill_to_block(flow, rng, d)
    flow.left -= 6
    flow.gap(12)
    item_table(flow, rng, d, grid=True, shade=False)
    totals_block(flow, rng, d, boxed=True)
    closing_lines(flow, rng, d)
    return sheet


LAYOUTS = (classic, letterhead, boxed)
