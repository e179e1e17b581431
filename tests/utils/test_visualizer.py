"""ovvision.utils.visualizer: small images enlarged, labels inside and apart, stable colours."""

from __future__ import annotations

import torch

from ovvision.utils.visualizer import (
    ClassPalette,
    draw_instances,
    drawing_scale,
    mask_outlines,
    place_labels,
)


def test_small_images_are_enlarged_for_drawing():
    image = torch.full((3, 128, 96), 128, dtype=torch.uint8)
    boxes = torch.tensor([[10.0, 10.0, 40.0, 40.0]])
    drawn = draw_instances(image, boxes, ["star 0.90"], [0], min_size=512)
    assert drawing_scale(128, 96, 512) == 4
    assert drawn.shape == (3, 512, 384) and drawn.dtype == torch.uint8
    # the box outline lands at the enlarged coordinates
    assert (drawn[:, 100, 40:160] != 128).any() and (drawn[:, 300, 300] == 128).all()
    assert draw_instances(image, boxes, ["star"], [0]).shape == (3, 128, 96)  # default: as is
    assert draw_instances(image, boxes[:0], [], [], min_size=512).shape == (3, 512, 384)


def test_labels_stay_inside_and_do_not_overlap():
    # three identical boxes in the top-left corner: labels cannot all go above them
    boxes = [[0, 0, 60, 60]] * 3 + [[90, 90, 100, 100]]
    sizes = [(40, 12)] * 4
    corners = place_labels(boxes, sizes, (100, 100))
    rects = [(x, y, x + w, y + h) for (x, y), (w, h) in zip(corners, sizes)]
    for x1, y1, x2, y2 in rects:
        assert x1 >= 0 and y1 >= 0 and x2 <= 100 and y2 <= 100
    for i in range(len(rects)):
        for j in range(i):
            a, b = rects[i], rects[j]
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])


def test_palette_keeps_a_class_colour_across_vocabularies():
    palette = ClassPalette()
    star, heart = palette("star"), palette("heart")
    assert star != heart
    palette("moon")
    assert palette("heart") == heart and palette("star") == star


def test_mask_outlines_are_the_border():
    masks = torch.zeros(1, 10, 10, dtype=torch.bool)
    masks[0, 2:8, 2:8] = True
    outline = mask_outlines(masks)
    assert outline[0, 2, 2:8].all() and outline[0, 7, 2:8].all()
    assert not outline[0, 3:7, 3:7].any() and not outline[0, 0].any()
    assert outline.sum() == 36 - 16
