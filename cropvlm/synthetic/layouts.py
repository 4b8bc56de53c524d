"""`draw_invoice`, `draw_receipt`: pick a layout family and its data for a language.

English ("en") draws exactly what it always drew; the other languages draw European
companies, the English families with their labels, and (invoices) the letterhead families.
"""

from __future__ import annotations

import random

from cropvlm.synthetic import invoices, letterheads, receipts
from cropvlm.synthetic.draw import GREY, Sheet, font_name
from cropvlm.synthetic.languages import pick

WORLD_INVOICE_LAYOUTS = (*invoices.LAYOUTS, *letterheads.LAYOUTS)


def draw_invoice(rng: random.Random, allow_multi_page: bool, language: str = "en") -> Sheet:
    """~25% of invoices get enough line items to continue on page 2 (when allowed)."""
    multi = rng.random() < 0.25 and allow_multi_page
    if language == "en":
        layout, size = rng.choice(invoices.LAYOUTS), rng.choice(invoices.PAGE_SIZES)
        d = invoices.invoice_data(rng, multi)
    else:  # A4: European paper
        layout, size = rng.choice(WORLD_INVOICE_LAYOUTS), invoices.PAGE_SIZES[0]
        d = invoices.world_invoice_data(rng, multi, language)
    sheet = layout(rng, d, size)
    family = rng.choice(("helv", "times"))
    pages = len(sheet.pages)
    if pages > 1 or (language != "en" and rng.random() < 0.3):  # "Seite 1 von 1" happens too
        template = pick(rng, d.words["page"])
        for i in range(pages):
            sheet.text(size[0] / 2, size[1] - 30, template.format(page=i + 1, pages=pages), font_name(family),
                       7, "center", GREY, page=i)
    return sheet


def draw_receipt(rng: random.Random, language: str = "en") -> Sheet:
    layout = rng.choice(receipts.LAYOUTS)
    if language == "en":
        return layout(rng, receipts.receipt_data(rng))
    return layout(rng, receipts.world_receipt_data(rng, language))
