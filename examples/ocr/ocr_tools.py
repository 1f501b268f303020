"""The OCR example's Python tools: DB box post-processing of the detector's map, and cropping and
resizing each text line for the direction classifier and the recognizer.

The algorithms and constants are PaddleOCR's, as RapidOCR runs them (DBPostProcess with thresh 0.3,
box_thresh 0.5, unclip 1.6, 2x2 dilation; perspective crop; 48-pixel-high resize and pad). They need
opencv-python, pyclipper and shapely (all installed with rapidocr-onnxruntime, the dev extra).
"""

import math

import cv2
import numpy as np
import pyclipper
from shapely.geometry import Polygon

IMAGE_H, IMAGE_W = 184, 368
MAX_LINES = 4
CLS_W, REC_W, LINE_H = 192, 320, 48
THRESH, BOX_THRESH, UNCLIP, MIN_SIZE = 0.3, 0.5, 1.6, 3
PROB_SCALE = 10000


def _mini_box(contour):
    rect = cv2.minAreaRect(contour)
    pts = sorted(cv2.boxPoints(rect), key=lambda p: p[0])
    a, d = (0, 1) if pts[1][1] > pts[0][1] else (1, 0)
    b, c = (2, 3) if pts[3][1] > pts[2][1] else (3, 2)
    return np.array([pts[a], pts[b], pts[c], pts[d]]), min(rect[1])


def _score(prob, box):
    h, w = prob.shape
    xmin = int(np.clip(np.floor(box[:, 0].min()), 0, w - 1))
    xmax = int(np.clip(np.ceil(box[:, 0].max()), 0, w - 1))
    ymin = int(np.clip(np.floor(box[:, 1].min()), 0, h - 1))
    ymax = int(np.clip(np.ceil(box[:, 1].max()), 0, h - 1))
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), dtype=np.uint8)
    shifted = box - np.array([xmin, ymin], dtype=box.dtype)
    cv2.fillPoly(mask, shifted.reshape(1, -1, 2).astype(np.int32), 1)
    return cv2.mean(prob[ymin:ymax + 1, xmin:xmax + 1], mask)[0]


def _unclip(box):
    poly = Polygon(box)
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(box, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    return np.array(offset.Execute(poly.area * UNCLIP / poly.length)).reshape((-1, 1, 2))


def _clockwise(pts):
    xs = pts[np.argsort(pts[:, 0]), :]
    left, right = xs[:2][np.argsort(xs[:2, 1])], xs[2:][np.argsort(xs[2:, 1])]
    return np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)


def _sorted(boxes):
    boxes = sorted(boxes, key=lambda b: (b[0][1], b[0][0]))
    for i in range(len(boxes) - 1):
        for j in range(i, -1, -1):
            if abs(boxes[j + 1][0][1] - boxes[j][0][1]) < 10 and boxes[j + 1][0][0] < boxes[j][0][0]:
                boxes[j], boxes[j + 1] = boxes[j + 1], boxes[j]
            else:
                break
    return boxes


def find_boxes(prob):
    """Text line boxes (4 corner points in image pixels, clockwise from top left), top to bottom.
    `prob` is the detector's map in units of 1e-4 (glue.det_map)."""
    pred = np.asarray(prob, dtype=np.float32) / PROB_SCALE
    height, width = pred.shape
    mask = cv2.dilate((pred > THRESH).astype(np.uint8), np.ones((2, 2)))
    contours = cv2.findContours((mask * 255).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)[-2]
    boxes = []
    for contour in contours[:1000]:
        points, side = _mini_box(contour)
        if side < MIN_SIZE or _score(pred, points.reshape(-1, 2)) < BOX_THRESH:
            continue
        box, side = _mini_box(_unclip(points))
        if side < MIN_SIZE + 2:
            continue
        box[:, 0] = np.clip(np.round(box[:, 0] / width * IMAGE_W), 0, IMAGE_W)
        box[:, 1] = np.clip(np.round(box[:, 1] / height * IMAGE_H), 0, IMAGE_H)
        box = _clockwise(box.astype(np.int32).astype(np.float32))
        box[:, 0] = np.clip(box[:, 0], 0, IMAGE_W - 1).astype(np.int32)
        box[:, 1] = np.clip(box[:, 1], 0, IMAGE_H - 1).astype(np.int32)
        if int(np.linalg.norm(box[0] - box[1])) > 3 and int(np.linalg.norm(box[0] - box[3])) > 3:
            boxes.append(box)
    return [b.tolist() for b in _sorted(boxes)][:MAX_LINES]


def _crop(image, box):
    pts = np.asarray(box, dtype=np.float32)
    w = int(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3])))
    h = int(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2])))
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    crop = cv2.warpPerspective(image, cv2.getPerspectiveTransform(pts, dst), (w, h),
                               borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    return np.rot90(crop) if crop.shape[0] / crop.shape[1] >= 1.5 else crop


def _resize(crop, width):
    """The line resized to LINE_H high (at most `width` wide) and padded, as twice its pixel values:
    RapidOCR pads with 0 after scaling pixels to [-1, 1], which is pixel 127.5, so 255 here."""
    h, w = crop.shape[:2]
    resized_w = min(width, math.ceil(LINE_H * w / h))
    img = cv2.resize(crop, (resized_w, LINE_H)).astype(np.int32).transpose(2, 0, 1)
    out = np.full((3, LINE_H, width), 255, dtype=np.int32)
    out[:, :, :resized_w] = 2 * img
    return out


def crop_lines(boxes, image):
    """Per line (up to MAX_LINES, padding rows after): the classifier's 48x192 input, the recognizer's
    48x320 input, and the recognizer's input of the line turned 180 degrees, side by side, as twice
    the pixel values (integers travel as JSON several times faster than floats; glue.py scales)."""
    img = np.clip(np.round(np.asarray(image, dtype=np.float32)), 0, 255).astype(np.uint8)
    out = np.full((MAX_LINES, 3, LINE_H, CLS_W + 2 * REC_W), 255, dtype=np.int32)
    for row, box in enumerate(boxes[:MAX_LINES]):
        crop = np.ascontiguousarray(_crop(img, box))
        turned = cv2.rotate(crop, cv2.ROTATE_180)
        out[row] = np.concatenate([_resize(crop, CLS_W), _resize(crop, REC_W), _resize(turned, REC_W)], axis=2)
    return out
