"""One small bad catalog per rule: each problem's exact location, path, message and hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.rules import gtin_check_digit, gtin_valid

from .helpers import Write, check, problems

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32

TEE = """\
products:
  - handle: classic-tee
    name: Classic Tee
    price: 25.00
    options: [Size, Colour]
    variants:
      - sku: TEE-S-BLK
        options: {Size: S, Colour: Black}
      - sku: TEE-M-BLK
        options: {Size: M, Colour: Black}
"""

CASES: dict[str, tuple[dict[str, str], list[str]]] = {
    "unknown key, with a did-you-mean hint": (
        {"a.yaml": "products:\n  - handle: gift-wrap\n    name: Gift Wrap\n    prcie: 3.50\n"},
        [
            'catalog/a.yaml:4:5: products[0].prcie: unknown key "prcie" (did you mean "price"?)',
        ],
    ),
    "a numeric key: one message for it and one per missing key": (
        {"a.yaml": "products:\n  - {1: x}\n"},
        [
            'catalog/a.yaml:2:5: products[0]: missing required key "handle"',
            'catalog/a.yaml:2:5: products[0]: missing required key "name"',
            "catalog/a.yaml:2:6: a key must be text, not the number 1 (put the key in quotes)",
        ],
    ),
    "unknown top-level key": (
        {"a.yaml": "product:\n  - handle: x\n"},
        ['catalog/a.yaml:1:1: product: unknown key "product" (did you mean "products"?)'],
    ),
    "missing required keys": (
        {"a.yaml": "products:\n  - name: Gift Wrap\n  - handle: gift-wrap\n"},
        [
            'catalog/a.yaml:2:5: products[0]: missing required key "handle"',
            'catalog/a.yaml:3:5: products[1]: missing required key "name"',
        ],
    ),
    "handle is one line of text, without spaces at its ends": (
        {"a.yaml": 'products:\n  - handle: "Gift\\tWrap "\n    name: Gift Wrap\n'},
        [
            'catalog/a.yaml:2:13: products[0].handle: "Gift\\tWrap " is not a handle '
            '(for example "gift-wrap")'
        ],
    ),
    "a number where text belongs, hint shows what was written": (
        {"a.yaml": "products:\n  - handle: gift-wrap\n    name: Gift Wrap\n    sku: 0123\n"},
        [
            "catalog/a.yaml:4:10: products[0].sku: expected text, got the number 83 "
            '(write it in quotes: "0123")'
        ],
    ),
    "prices are amounts": (
        {
            "a.yaml": (
                "products:\n  - handle: gift-wrap\n    name: Gift Wrap\n"
                "    price: -1\n    supply_price: '1,50'\n"
            )
        },
        [
            "catalog/a.yaml:4:12: products[0].price: -1 is below 0 "
            "(an amount from 0 to 999999999.99999 with at most 5 decimals, e.g. 25.00)",
            'catalog/a.yaml:5:19: products[0].supply_price: "1,50" is not an amount from 0 to '
            "999999999.99999 with at most 5 decimals, e.g. 25.00",
        ],
    ),
    "YAML 1.1 number forms in prices are refused with the decimal to write": (
        {
            "a.yaml": (
                "products:\n  - handle: a\n    name: A\n    sku: 0123\n"
                "    price: 12:50\n    supply_price: 0123\n"
                "  - handle: b\n    name: B\n    sku: B\n    price: 0x10\n    supply_price: 0b101\n"
                "  - handle: c\n    name: C\n    sku: C\n    price: 0o17\n    supply_price: 012.5\n"
                "  - handle: d\n    name: D\n    options: [Size]\n    variants:\n"
                "      - {sku: D1, options: {Size: S}, price: 1:30, supply_price: 0.50}\n"
            )
        },
        [
            "catalog/a.yaml:4:10: products[0].sku: expected text, got the number 83 "
            '(write it in quotes: "0123")',
            "catalog/a.yaml:5:12: products[0].price: 12:50 is a YAML 1.1 base-60 number, "
            "read as 770 (write the amount with a decimal point, e.g. 12.50)",
            "catalog/a.yaml:6:19: products[0].supply_price: 0123 is a YAML 1.1 octal number, "
            "read as 83 (write it without the leading zero: 123)",
            "catalog/a.yaml:10:12: products[1].price: 0x10 is a YAML 1.1 hexadecimal number, "
            "read as 16 (write it in decimal: 16)",
            "catalog/a.yaml:11:19: products[1].supply_price: 0b101 is a YAML 1.1 binary number, "
            "read as 5 (write it in decimal: 5)",
            "catalog/a.yaml:15:12: products[2].price: 0o17 is a YAML 1.2 octal number, "
            "not an amount (write it in decimal: 15)",
            "catalog/a.yaml:21:46: products[3].variants[0].price: 1:30 is a YAML 1.1 base-60 "
            "number, read as 90 (write the amount with a decimal point, e.g. 1.30)",
        ],
    ),
    "prices are below 10^9, the most a double reads back to 5 decimals": (
        {
            "a.yaml": (
                "products:\n  - handle: a\n    name: A\n    sku: A\n"
                "    price: 1000000000\n    supply_price: '12345678901234567890'\n"
                "  - handle: b\n    name: B\n    sku: B\n"
                "    price: 999999999.99999\n    supply_price: '0999999999.99999'\n"
                "  - handle: c\n    name: C\n    sku: C\n    price: 123456789012345678901234\n"
            )
        },
        [
            "catalog/a.yaml:5:12: products[0].price: 1000000000 is too large: amounts are below "
            "1,000,000,000 (an amount from 0 to 999999999.99999 with at most 5 decimals, "
            "e.g. 25.00)",
            'catalog/a.yaml:6:19: products[0].supply_price: "12345678901234567890" is not an '
            "amount from 0 to 999999999.99999 with at most 5 decimals, e.g. 25.00",
            "catalog/a.yaml:15:12: products[2].price: 123456789012345678901234 is too large: "
            "amounts are below 1,000,000,000 (an amount from 0 to 999999999.99999 with at most "
            "5 decimals, e.g. 25.00)",
        ],
    ),
    "prices have at most 5 decimals and are finite": (
        {
            "a.yaml": (
                "products:\n  - handle: gift-wrap\n    name: Gift Wrap\n"
                "    price: 1.123456\n    supply_price: .inf\n"
            )
        },
        [
            "catalog/a.yaml:4:12: products[0].price: 1.123456 has more than 5 decimals "
            "(the store keeps prices to 5 decimals)",
            "catalog/a.yaml:5:19: products[0].supply_price: inf is not an amount "
            "(write a number such as 25.00)",
        ],
    ),
    "settings only in catalog.yaml": (
        {"apparel.yaml": "settings:\n  prune: none\n"},
        [
            "catalog/apparel.yaml:1:1: settings: settings belong only in catalog.yaml at the top "
            "of the catalog directory (move this block to catalog.yaml)"
        ],
    ),
    "settings.prune is one of three words": (
        {"catalog.yaml": "settings:\n  prune: deactivated\n"},
        [
            'catalog/catalog.yaml:2:10: settings.prune: "deactivated" is not one of none, '
            'deactivate, delete (did you mean "deactivate"?)'
        ],
    ),
    "a family needs variants, variants need options": (
        {
            "a.yaml": (
                "products:\n  - handle: a\n    name: A\n    options: [Size]\n"
                "  - handle: b\n    name: B\n    variants:\n      - {sku: B1, options: {Size: S}}\n"
            )
        },
        [
            "catalog/a.yaml:4:5: products[0].options: a family with options needs variants "
            "(add variants, each with a sku and a value for every option, or remove options)",
            "catalog/a.yaml:7:5: products[1].variants: variants need the family's options "
            "(declare the option names, e.g. options: [Size])",
        ],
    ),
    "sku and barcode only on simple products": (
        {"a.yaml": TEE.replace("    price: 25.00\n", "    price: 25.00\n    sku: TEE\n")},
        [
            "catalog/a.yaml:5:5: products[0].sku: a family has no sku of its own, only its "
            "variants do (move the sku to a variant, or remove options and variants to make this "
            "a simple product)"
        ],
    ),
    "1 to 3 options": (
        {"a.yaml": TEE.replace("options: [Size, Colour]", "options: [Size, Colour, Fit, Length]")},
        [
            "catalog/a.yaml:5:14: products[0].options: lists 4 items, more than the 3 allowed "
            "(1 to 3 variant attribute names, e.g. [Size, Colour])",
            "catalog/a.yaml:8:18: products[0].variants[0].options: missing a value for option "
            '"Fit", "Length" (every variant needs a value for each of Size, Colour, Fit, Length)',
            "catalog/a.yaml:10:18: products[0].variants[1].options: missing a value for option "
            '"Fit", "Length" (every variant needs a value for each of Size, Colour, Fit, Length)',
        ],
    ),
    "variant option keys are exactly the family's options": (
        {
            "a.yaml": TEE.replace("{Size: S, Colour: Black}", "{Size: S, Color: Black}").replace(
                "{Size: M, Colour: Black}", "{Size: M}"
            )
        },
        [
            'catalog/a.yaml:8:28: products[0].variants[0].options.Color: "Color" is not one of '
            'the family\'s options (Size, Colour) (did you mean "Colour"?)',
            "catalog/a.yaml:8:18: products[0].variants[0].options: missing a value for option "
            '"Colour" (every variant needs a value for each of Size, Colour)',
            "catalog/a.yaml:10:18: products[0].variants[1].options: missing a value for option "
            '"Colour" (every variant needs a value for each of Size, Colour)',
        ],
    ),
    "option values are text": (
        {
            "a.yaml": TEE.replace("{Size: S, Colour: Black}", "{Size: [S], Colour: Black}").replace(
                "{Size: M, Colour: Black}", "{Size: {M: 1}, Colour: Black}"
            )
        },
        [
            "catalog/a.yaml:8:25: products[0].variants[0].options.Size: expected text, got a list",
            "catalog/a.yaml:10:25: products[0].variants[1].options.Size: expected text, "
            "got a mapping",
        ],
    ),
    "option combinations are unique in a family": (
        {"a.yaml": TEE.replace("{Size: M, Colour: Black}", "{Size: s, Colour: Black}")},
        [
            "catalog/a.yaml:10:18: products[0].variants[1].options: the same options as "
            "variants[0] (Size: s, Colour: Black) (each variant of a family needs its own "
            "combination of option values)"
        ],
    ),
    "at most 200 variants": (
        {
            "a.yaml": "products:\n  - handle: a\n    name: A\n    options: [Size]\n    variants:\n"
            + "".join(f"      - {{sku: A{i}, options: {{Size: '{i}'}}}}\n" for i in range(201))
        },
        [
            "catalog/a.yaml:6:7: products[0].variants: lists 201 items, more than the 200 "
            "allowed (1 to 200 variants)"
        ],
    ),
    "barcode check digit": (
        {
            "a.yaml": (
                "products:\n  - handle: a\n    name: A\n    sku: A\n    barcode: '9300000000012'\n"
                "  - handle: b\n    name: B\n    sku: B\n    barcode: 9300000000019\n"
            )
        },
        [
            'catalog/a.yaml:5:14: products[0].barcode: barcode "9300000000012" has a wrong check '
            "digit: the last digit should be 9 (check the barcode for a typo)",
            "catalog/a.yaml:9:14: products[1].barcode: expected text, got the number "
            '9300000000019 (write it in quotes: "9300000000019")',
        ],
    ),
    "barcode length": (
        {"a.yaml": "products:\n  - handle: a\n    name: A\n    sku: A\n    barcode: '123456789'\n"},
        [
            'catalog/a.yaml:5:14: products[0].barcode: "123456789" is not a GTIN-8, GTIN-12, '
            "GTIN-13 or GTIN-14 barcode (8, 12, 13 or 14 digits, quoted)"
        ],
    ),
    "names without surrounding spaces": (
        {"a.yaml": "brands:\n  - name: 'Acme '\n"},
        [
            'catalog/a.yaml:2:11: brands[0].name: "Acme " is not a name (one line of text, '
            "without leading or trailing spaces)"
        ],
    ),
    "names are one line, shown escaped": (
        {"a.yaml": 'products:\n  - {handle: a, name: "Tee\\u2028Two ", sku: "A\\tB"}\n'},
        [
            'catalog/a.yaml:2:23: products[0].name: "Tee\\u2028Two " is not a product name (text '
            "without spaces at either end (a name a store holds may span lines))",
            'catalog/a.yaml:2:45: products[0].sku: "A\\tB" is not a SKU (one line of text, without '
            "spaces at either end)",
        ],
    ),
    "category path": (
        {"a.yaml": "products:\n  - handle: a\n    name: A\n    category: Apparel // Tops\n"},
        [
            'catalog/a.yaml:4:15: products[0].category: "Apparel // Tops" is not a category path, '
            'root first (a string with " / " between levels (Apparel / Tops), or a list of level '
            'names when a name holds "/" ([Spirits, Bourbon/Whiskey]))'
        ],
    ),
    "tags listed twice in a product, or spelled two ways": (
        {"a.yaml": "products:\n  - handle: a\n    name: A\n    tags: [summer, Summer, summer]\n"},
        [
            'catalog/a.yaml:4:20: products[0].tags[1]: tag "Summer" differs only in case or '
            'spaces from "summer" at catalog/a.yaml:4:12 (tag names are case-insensitive in the '
            'store: write it as "summer")',
            'catalog/a.yaml:4:28: products[0].tags[2]: tag "summer" is listed twice',
        ],
    ),
    "image paths are relative": (
        {"a.yaml": "products:\n  - handle: a\n    name: A\n    images: [/etc/passwd]\n"},
        [
            'catalog/a.yaml:4:14: products[0].images[0]: image path "/etc/passwd" is not relative '
            "to the catalog directory (put the file under the catalog directory and write e.g. "
            "images/tee/front.jpg)"
        ],
    ),
    "at most 250 images": (
        {
            "a.yaml": "products:\n  - handle: a\n    name: A\n    images:\n"
            + "".join(f"      - img/{i}.png\n" for i in range(251))
        },
        [
            "catalog/a.yaml:5:7: products[0].images: lists 251 items, more than the 250 allowed "
            "(at most 250 image paths, in display order)"
        ],
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_each_rule_reports_its_problem_exactly(write: Write, case: str) -> None:
    files, expected = CASES[case]
    for i in range(251):  # the images the "at most 250 images" case names
        write(f"img/{i}.png", PNG)
    for name, text in files.items():
        write(name, text)
    assert problems() == sorted(expected, key=_sort_key)


def _sort_key(line: str) -> tuple[str, int, int]:
    file, row, col, _ = line.split(":", 3)
    return (file, int(row), int(col))


# --- across files ------------------------------------------------------------------------------


def test_handle_and_sku_declared_once_name_both_places(write: Write) -> None:
    write("apparel.yaml", TEE)
    write(
        "sale.yaml",
        """
        products:
          - handle: classic-tee
            name: Classic Tee (sale)
            sku: TEE-S-BLK
        """,
    )
    assert problems() == [
        'catalog/sale.yaml:2:13: products[0].handle: "classic-tee" is also declared in '
        "catalog/apparel.yaml:2:13 (declare each handle once)",
        'catalog/sale.yaml:4:10: products[0].sku: "TEE-S-BLK" is also declared in '
        "catalog/apparel.yaml:7:14 (declare each SKU once)",
    ]


def test_skus_clash_case_insensitively_and_within_one_file(write: Write) -> None:
    write("a.yaml", TEE.replace("sku: TEE-M-BLK", "sku: tee-s-blk"))
    assert problems() == [
        'catalog/a.yaml:9:14: products[0].variants[1].sku: "tee-s-blk" is also declared as '
        '"TEE-S-BLK" in catalog/a.yaml:7:14 (declare each SKU once)'
    ]


def test_two_families_may_share_a_name_as_real_stores_do(write: Write) -> None:
    write("a.yaml", TEE)
    write("b.yaml", "products:\n  - handle: tee-two\n    name: Classic Tee\n")
    assert problems() == []


def test_handles_are_compared_exactly_as_the_store_holds_them(write: Write) -> None:
    # WATSON and watson are two handles; WATSON twice is one handle declared twice.
    write("a.yaml", "products:\n  - {handle: WATSON, name: A}\n  - {handle: watson, name: B}\n")
    assert problems() == []
    write("b.yaml", "products:\n  - {handle: WATSON, name: C}\n")
    assert problems() == [
        'catalog/b.yaml:2:14: products[0].handle: "WATSON" is also declared in '
        "catalog/a.yaml:2:14 (declare each handle once)"
    ]


def test_barcodes_are_unique(write: Write) -> None:
    write("a.yaml", "products:\n  - {handle: a, name: A, sku: A, barcode: '9300000000019'}\n")
    write("b.yaml", "products:\n  - {handle: b, name: B, sku: B, barcode: '9300000000019'}\n")
    assert problems() == [
        'catalog/b.yaml:2:43: products[0].barcode: "9300000000019" is also declared in '
        "catalog/a.yaml:2:43 (declare each barcode once)"
    ]


def test_brand_declared_twice(write: Write) -> None:
    write("a.yaml", "brands:\n  - name: Acme\n")
    write("b.yaml", "brands:\n  - name: ACME\n    description: again\n")
    assert problems() == [
        'catalog/b.yaml:2:11: brands[0].name: "ACME" is also declared as "Acme" in '
        "catalog/a.yaml:2:11 (declare each brand once)"
    ]


@pytest.mark.parametrize(
    ("declared", "used", "expected"),
    [
        (
            "brands:\n  - name: Acme\n",
            "    brand: acme\n",
            'catalog/p.yaml:4:12: products[0].brand: brand "acme" differs only in case or spaces '
            'from "Acme" at catalog/catalog.yaml:2:11 (brand names are case-insensitive in the '
            'store: write it as "Acme")',
        ),
        (
            "suppliers:\n  - name: Acme Supply\n",
            "    supplier: ACME supply\n",
            'catalog/p.yaml:4:15: products[0].supplier: supplier "ACME supply" differs only in '
            'case or spaces from "Acme Supply" at catalog/catalog.yaml:2:11 (supplier names are '
            'case-insensitive in the store: write it as "Acme Supply")',
        ),
        (
            "tags: [Summer]\n",
            "    tags: [summer]\n",
            'catalog/p.yaml:4:12: products[0].tags[0]: tag "summer" differs only in case or '
            'spaces from "Summer" at catalog/catalog.yaml:1:8 (tag names are case-insensitive in '
            'the store: write it as "Summer")',
        ),
    ],
)
def test_names_differing_only_in_case_are_errors(
    write: Write, declared: str, used: str, expected: str
) -> None:
    # p.yaml sorts after catalog.yaml, but the declaration would win from any file.
    write("catalog.yaml", declared)
    write("p.yaml", "products:\n  - handle: a\n    name: A\n" + used)
    assert problems() == [expected]


def test_declared_spelling_wins_over_earlier_references(write: Write) -> None:
    write("a.yaml", "products:\n  - {handle: a, name: A, sku: A, brand: ACME}\n")
    write("z.yaml", "brands:\n  - name: Acme\n")
    assert problems() == [
        'catalog/a.yaml:2:41: products[0].brand: brand "ACME" differs only in case or spaces '
        'from "Acme" at catalog/z.yaml:2:11 (brand names are case-insensitive in the store: '
        'write it as "Acme")'
    ]


def test_option_names_are_spelled_one_way_across_families(write: Write) -> None:
    write("a.yaml", TEE)
    write(
        "b.yaml",
        "products:\n  - handle: b\n    name: B\n    options: [size]\n"
        "    variants: [{sku: B1, options: {size: S}}]\n",
    )
    assert problems() == [
        'catalog/b.yaml:4:15: products[0].options[0]: option "size" differs only in case or '
        'spaces from "Size" at catalog/a.yaml:5:15 (option names are case-insensitive in the '
        'store: write it as "Size")'
    ]


def test_brand_not_declared_is_fine_it_is_created_if_missing(write: Write) -> None:
    write("a.yaml", "products:\n  - {handle: a, name: A, sku: A, brand: Newco, supplier: New}\n")
    assert problems() == []


# --- images ------------------------------------------------------------------------------------


def _product_with_images(*paths: str) -> str:
    return "products:\n  - handle: a\n    name: A\n    images:\n" + "".join(
        f"      - {p}\n" for p in paths
    )


def test_images_exist_and_are_images_by_content(write: Write, catalog_dir: Path) -> None:
    write("images/ok.png", PNG)
    write("images/fake.jpg", b"GIF? no, just text")
    write("images/real.jpg", b"\x89PNG\r\n\x1a\n rest")  # a PNG named .jpg: fine
    write(
        "a.yaml",
        _product_with_images(
            "images/ok.png", "images/missing.png", "images/fake.jpg", "images/real.jpg"
        ),
    )
    assert problems() == [
        'catalog/a.yaml:6:9: products[0].images[1]: image "images/missing.png" does not exist '
        "(check the path and its case)",
        'catalog/a.yaml:7:9: products[0].images[2]: image "images/fake.jpg" is not a JPEG, PNG, '
        "GIF, TIFF or WebP file (the type is read from the file's content, not its name)",
    ]


def test_images_inside_the_catalog_directory(write: Write, catalog_dir: Path) -> None:
    (catalog_dir.parent / "outside.png").write_bytes(PNG)
    (catalog_dir / "link.png").symlink_to(catalog_dir.parent / "outside.png")
    write("a.yaml", _product_with_images("../outside.png", "link.png", "images/../link.png"))
    found = problems()
    assert found[:2] == [
        'catalog/a.yaml:5:9: products[0].images[0]: image "../outside.png" is outside the '
        "catalog directory (keep images inside the catalog directory: no .. or links out of it)",
        'catalog/a.yaml:6:9: products[0].images[1]: image "link.png" is outside the catalog '
        "directory (keep images inside the catalog directory: no .. or links out of it)",
    ]
    assert found[2:] == [
        'catalog/a.yaml:7:9: products[0].images[2]: image "images/../link.png" is listed twice '
        "(list each image once)"
    ]


def test_image_paths_that_cannot_resolve(write: Write, catalog_dir: Path) -> None:
    (catalog_dir / "a.png").symlink_to("b.png")
    (catalog_dir / "b.png").symlink_to("a.png")
    write("a.yaml", 'products:\n  - {handle: a, name: A, images: [a.png, "x\\0y.png"]}\n')
    assert problems() == [
        'catalog/a.yaml:2:35: products[0].images[0]: image "a.png" cannot be found (check the '
        "path and any links in it)",
        'catalog/a.yaml:2:42: products[0].images[1]: image "x\\x00y.png" cannot be found (check '
        "the path and any links in it)",
    ]


def test_images_at_most_10_mb(write: Write, catalog_dir: Path) -> None:
    big = catalog_dir / "big.png"
    with big.open("wb") as f:
        f.write(PNG)
        f.truncate(10 * 1024 * 1024 + 1)
    write("a.yaml", _product_with_images("big.png"))
    assert problems() == [
        'catalog/a.yaml:5:9: products[0].images[0]: image "big.png" is 10.0 MB, more than 10 MB '
        "(make it smaller)"
    ]


def test_image_hashes_fill_the_model(write: Write) -> None:
    import hashlib

    write("images/ok.png", PNG)
    write("a.yaml", _product_with_images("./images//ok.png"))
    catalog = check().catalog
    assert catalog is not None
    product = catalog.product("a")
    assert product is not None and product.images is not None
    assert [(i.path, i.sha256) for i in product.images] == [
        ("images/ok.png", hashlib.sha256(PNG).hexdigest())
    ]


# --- GTIN ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code", ["96385074", "036000291452", "4006381333931", "10614141000415", "9300000000019"]
)
def test_gtin_check_digits_of_real_codes(code: str) -> None:
    assert gtin_valid(code)
    assert gtin_check_digit(code[:-1]) == int(code[-1])


@pytest.mark.parametrize("code", ["96385075", "036000291453", "4006381333932", "123", "abcdefgh"])
def test_gtin_wrong_codes(code: str) -> None:
    assert not gtin_valid(code)


def test_a_product_on_a_category_with_subcategories_is_an_error(write: Write) -> None:
    # The store refuses a product on a non-leaf category (422); catch it offline, at the line.
    write(
        "a.yaml",
        "products:\n"
        "  - {handle: a, name: A, sku: A, category: Accessories}\n"
        "  - {handle: b, name: B, sku: B, category: Accessories / Bags}\n"
        "  - {handle: c, name: C, sku: C, category: Accessory}\n",
    )
    assert problems() == [
        'catalog/a.yaml:2:44: products[0].category: category "Accessories" has subcategories '
        'in this catalog ("Accessories / Bags" at catalog/a.yaml:3:44), and the store only puts '
        "products on a leaf category (move the product to a subcategory such as "
        '"Accessories / Bags")'
    ]


def test_one_image_sniffer_names_the_type_and_the_file_extension() -> None:
    from reconciler.rules import ImageKind, image_type, sniff_image

    webp = b"RIFF\x00\x00\x00\x00WEBPVP8 "
    assert sniff_image(b"\xff\xd8\xff\xe0rest") == ImageKind("image/jpeg", "jpg")
    assert sniff_image(b"MM\x00*rest") == ImageKind("image/tiff", "tif")
    assert sniff_image(webp) == ImageKind("image/webp", "webp")
    assert sniff_image(b"%PDF-1.7") is None
    assert [image_type(h) for h in (b"\xff\xd8\xff", b"II*\x00", webp)] == ["jpeg", "tiff", "webp"]
