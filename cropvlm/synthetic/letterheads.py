"""European business-letter invoices: a brand letterhead, or a window-envelope address block.

They recreate what misleads readers of real invoices: the big heading is the document's
title ("RECHNUNG", "FACTUUR"), not the vendor; the most prominent company in the address
block is the customer; the vendor may be printed only as a large brand line, or only in
the small legal line at the foot of every page. The gold vendor box is the letterhead line
when the page has one, else the name in the footer on page 1.
"""

from __future__ import annotations

import random

from cropvlm.synthetic import locales
from cropvlm.synthetic.draw import BLACK, GREY, Flow, Rect, Sheet, font_name, sub_rect, text_width
from cropvlm.synthetic.invoices import (InvoiceData, bill_to_block, closing_lines, item_table, logo, meta_column,
                                        totals_block, vendor_block)
from cropvlm.synthetic.languages import pick

FOOT_HEIGHT = 44  # points kept free above FOOT_BOTTOM for the legal footer
FOOT_BOTTOM = 40  # points from the page's lower edge; "Page 1 of 2" goes below it
_INKS = (BLACK, (0.12, 0.25, 0.5), (0.6, 0.1, 0.1), (0.1, 0.4, 0.3))


def _fitted(lines: list[str], font: str, size: float, width: float) -> float:
    """Largest size <= `size` at which every line fits `width` points."""
    widest = max(text_width(line, font, size) for line in lines)
    return size if widest <= width else size * width / widest * 0.98


def legal_footer(sheet: Sheet, rng: random.Random, d: InvoiceData, left: float, right: float,
                 family: str) -> tuple[str, Rect]:
    """Grey legal lines at the foot of every page (name, address, ids, bank), as two centred
    lines or three columns. Returns the vendor name as printed there and its rect on page 1."""
    v, loc = d.vendor, d.loc
    ids, bank = locales.legal_ids(rng, loc, v.reg_no), locales.bank(rng, loc)
    name_font, font = font_name(family, rng.random() < 0.4), font_name(family)
    if rng.random() < 0.5:
        sep = rng.choice((" · ", " | ", " - ", ", "))
        blocks = [[sep.join((v.name, *v.address, v.phone)), sep.join((*ids, *bank))]]
        xs, align, width = [(left + right) / 2], "center", right - left
    else:
        blocks = [[v.name, *v.address], [v.phone, *ids], [pick(rng, d.words["bank"]), *bank]]
        width = (right - left) / 3
        xs, align = [left + c * width for c in range(3)], "left"
        width -= 6  # a gutter between the columns
    base = rng.uniform(6.5, 7.5)
    size = min(_fitted(block, name_font, base, width) for block in blocks)
    step = size * 1.4
    top = sheet.height - FOOT_BOTTOM - max(len(block) for block in blocks) * step
    for page in range(len(sheet.pages)):
        sheet.line(left, top - 5, right, top - 5, 0.4, GREY, page=page)
        for b, (x, block) in enumerate(zip(xs, blocks)):
            for i, line in enumerate(block):
                first = b == i == 0  # the line that starts with the vendor's name
                rect = sheet.text(x, top + i * step, line, name_font if first else font, size, align, GREY, page=page)
                if first and page == 0:
                    name_rect = sub_rect(rect, line, 0, len(v.name), name_font, size)
    return v.name, name_rect


def _brand(flow: Flow, rng: random.Random, d: InvoiceData, align: str) -> tuple[str, Rect]:
    """The vendor's name as a large brand line, maybe in capitals and colour."""
    text = d.vendor.name.upper() if rng.random() < 0.3 else d.vendor.name
    size = flow.fit(text, True, rng.uniform(15, 26))
    return text, flow.text(text, align, bold=True, size=size, color=rng.choice(_INKS))


def _page(size: tuple[float, float], rng: random.Random, margin: float) -> tuple[Sheet, Flow]:
    sheet = Sheet(*size)
    family, fs = rng.choice(("helv", "helv", "times")), rng.uniform(7.5, 9.5)
    bottom = size[1] - FOOT_BOTTOM - FOOT_HEIGHT - 12
    flow = Flow(sheet, margin, size[0] - margin, margin, family, fs, 1.35, bottom)
    return sheet, flow


def _body(flow: Flow, rng: random.Random, d: InvoiceData) -> None:
    """Line items, the totals (subtotal, VAT, total) and the closing lines."""
    item_table(flow, rng, d, grid=rng.random() < 0.5, shade=rng.random() < 0.4)
    totals_block(flow, rng, d, boxed=rng.random() < 0.3)
    closing_lines(flow, rng, d)


def brand_letterhead(rng: random.Random, d: InvoiceData, size: tuple[float, float]) -> Sheet:
    """Logo and/or brand line, a big title heading, customer block beside the meta rows."""
    margin = rng.uniform(40, 56)
    sheet, flow = _page(size, rng, margin)
    align = rng.choice(("left", "left", "center", "right"))
    named = rng.random() < 0.75  # else the page shows only a logo: the name is in the footer
    if rng.random() < 0.5 or not named:
        x = {"left": margin, "center": size[0] / 2 - 28, "right": size[0] - margin - 56}[align]
        flow.gap(logo(sheet, rng, x, margin, d.vendor.name))
    if named:
        brand = _brand(flow, rng, d, align)
        if rng.random() < 0.5:  # the vendor's address under the letterhead, else only in the footer
            line = " · ".join((*d.vendor.address, d.vendor.phone))
            flow.text(line, align, size=flow.fit(line, size=flow.size * 0.9), color=GREY)
    flow.gap(rng.uniform(12, 28))
    flow.text(pick(rng, d.words["title"]), rng.choice(("left", "right")), bold=True, size=rng.uniform(16, 24),
              color=rng.choice(_INKS))
    flow.gap(8)
    top = flow.y
    bill_to_block(flow, rng, d)
    if rng.random() < 0.3:
        flow.gap(6)
        flow.text(pick(rng, d.words["ship_to"]), bold=True)
        for line in (d.customer.name, *locales.address(rng, d.loc)):
            flow.text(line)
    meta_bottom = meta_column(sheet, rng, d, flow.left + (flow.right - flow.left) * 0.55, flow.right, top,
                              flow.family, flow.size)
    flow.y = max(flow.y, meta_bottom) + 16
    _body(flow, rng, d)
    name, rect = legal_footer(sheet, rng, d, margin, size[0] - margin, flow.family)
    sheet.mark("vendor", *(brand if named else (name, rect)), page=0)
    return sheet


def window_letter(rng: random.Random, d: InvoiceData, size: tuple[float, float]) -> Sheet:
    """DIN 5008-like letter: vendor top right (or logo only), a return line over the customer's
    address in the envelope window without a label, info block beside it, then "Rechnung Nr. ..."."""
    margin = rng.uniform(50, 68)
    sheet, flow = _page(size, rng, margin)
    right_x = size[0] * rng.uniform(0.55, 0.62)
    named = rng.random() < 0.7
    head = Flow(sheet, right_x, size[0] - margin, margin, flow.family, flow.size, 1.35)
    if rng.random() < 0.5 or not named:
        head.gap(logo(sheet, rng, size[0] - margin - 56, margin, d.vendor.name))
    if named:
        vendor_block(head, rng, d, "right")  # marks the vendor
    window = max(128.0, head.y + 10)  # 45 mm from the top edge, as DIN 5008 places the window
    sender = " · ".join((d.vendor.name, *d.vendor.address[:2]))
    font = font_name(flow.family)
    rect = sheet.text(margin, window, sender, font, _fitted([sender], font, 6.5, right_x - margin - 12))
    sheet.line(rect[0], rect[3] + 0.5, rect[2], rect[3] + 0.5, 0.3)
    flow.y = window + 16
    customer = Flow(sheet, margin, right_x - 12, flow.y, flow.family, flow.size * 1.1, 1.3)
    customer.text(d.customer.name, bold=rng.random() < 0.5)
    if rng.random() < 0.4:
        customer.text(pick(rng, d.words["attention"]))
    for line in d.customer.address:
        customer.text(line)
    inline = rng.random() < 0.4  # the number in the heading, not in the info block
    meta_bottom = meta_column(sheet, rng, d, right_x, size[0] - margin, window, flow.family, flow.size, not inline)
    flow.y = max(customer.y, meta_bottom) + rng.uniform(22, 40)
    title = pick(rng, d.words["title"]).split(" / ")[0]
    heading = f"{title} {pick(rng, d.words['number_short'])} {d.number}" if inline else title
    hsize = rng.uniform(12, 16)
    rect = flow.text(heading, bold=True, size=hsize)
    if inline:
        start = len(heading) - len(d.number)
        sheet.mark("invoice_number", d.number, sub_rect(rect, heading, start, len(heading),
                                                        font_name(flow.family, True), hsize))
    flow.gap(6)
    if rng.random() < 0.6:
        flow.text(pick(rng, d.words["greeting"]))
        flow.text(pick(rng, d.words["intro"]))
        flow.gap(8)
    _body(flow, rng, d)
    name, rect = legal_footer(sheet, rng, d, margin, size[0] - margin, flow.family)
    if not named:
        sheet.mark("vendor", name, rect, page=0)
    return sheet


LAYOUTS = (brand_letterhead, brand_letterhead, window_letter, window_letter)
