"""Round trip of every assignment in solutions/ through nbgrader and the course's grader.

One temporary course folder is built for all assignments under test (a copy of
nbgrader_config.py and the source notebooks, so the repository is never written to):

1. ``nbgrader generate_assignment "*"`` (one run) -> the releases, compared with the
   committed ``assignments/``;
2. ``python -m cnn_course.grading autograde <name> --workers 2`` (one run per assignment, real
   sandboxes) grades three submissions of every assignment, each built as a student would hand
   it in, from the release: "solution_student" (the release with the source's solutions filled
   in: must get full marks and run without an error in any cell; this is the suite's only run
   of the solution notebooks, and its grading time goes into the notebook run-time table),
   "blank_student" (the release itself: 0 without crashing the grader, and every visible check
   says which exercise is not answered yet) and, where LIBRARY_ANSWERS defines them,
   "library_student" (answers that hand the work to a library: exactly those points are lost,
   because the grader serves the functions from an environment where the library is a stub);
3. ``nbgrader generate_feedback "*"`` (one run) -> one HTML file per submission, which must
   hold no hidden-test code and no traceback of it.

New assignments are picked up automatically. Run only these tests with
``.venv/bin/pytest -m nbgrader``; only the assignments of the selected tests are graded
(``-k ps0`` grades PS0 alone), and PS2, which trains a network, takes the longest. The
sandboxes need bubblewrap (``make system-deps``): without it the round trip grades with
``--unsafe-no-sandbox`` on a laptop (these are our own notebooks) and fails on CI.
"""

import csv
import html
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from traitlets.config.loader import PyFileConfigLoader

# The first test grades every selected assignment (minutes on 2 cores), so the limit is generous.
pytestmark = [pytest.mark.nbgrader, pytest.mark.timeout(1500)]

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS_DIR = REPO_ROOT / "solutions"
RELEASES_DIR = REPO_ROOT / "assignments"
CONFIG_FILE = REPO_ROOT / "nbgrader_config.py"


def _load_release_tool():
    # tools/ is not a package; load the script as a module so the test uses the
    # very code instructors run to regenerate the releases.
    spec = importlib.util.spec_from_file_location("release_tool", REPO_ROOT / "tools" / "release.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


release_tool = _load_release_tool()
ASSIGNMENTS = release_tool.assignment_names(SOLUTIONS_DIR)

SOLUTION_STUDENT = "solution_student"
BLANK_STUDENT = "blank_student"
LIBRARY_STUDENT = "library_student"

# Per assignment: solution cells (by grade_id) replaced with answers that produce
# (mostly) right values by calling a library, and the grade cells that must then
# score 0. Every other grade cell must still get full marks.
LIBRARY_ANSWERS = {
    "ps0_images": {
        "replacements": {
            "ex2-solution": '''
import skimage.color


def to_grayscale(img):
    return skimage.color.rgb2gray(img) * 255
''',
            "ex3-solution": '''
import skimage.util


def crop_center(img, height, width):
    image_height, image_width = img.shape[:2]
    if not (1 <= height <= image_height and 1 <= width <= image_width):
        raise ValueError(f"cannot crop {height} x {width} from a {image_height} x {image_width} image")
    top, left = (image_height - height) // 2, (image_width - width) // 2
    margins = [(top, image_height - height - top), (left, image_width - width - left)]
    return skimage.util.crop(img, margins + [(0, 0)] * (img.ndim - 2))
''',
            "ex4-solution": '''
import skimage.util


def rescale_01(img):
    if img.dtype != np.uint8:
        raise TypeError(f"expected uint8, got {img.dtype}")
    return skimage.util.img_as_float32(img)
''',
            "ex5-solution": '''
def dense_weight_count(height, width, channels, units, bias=True):
    import keras

    model = keras.Sequential([keras.Input(shape=(height, width, channels)), keras.layers.Flatten(),
                              keras.layers.Dense(units, use_bias=bias)])
    return model.count_params()
''',
        },
        "rejected_cells": ["ex2-check", "ex2-hidden", "ex3-check", "ex3-hidden",
                           "ex4-check", "ex4-hidden", "ex5-check", "ex5-hidden"],
    },
    "ps1_convolution": {
        "replacements": {
            "ex2-solution": '''
import scipy.signal


def correlate2d(x, w, stride=1, padding="valid", dilation=1):
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)
    if x.ndim != 2 or w.ndim != 2 or stride < 1 or dilation < 1:
        raise ValueError("bad arguments")
    spans = [dilation * (k - 1) + 1 for k in w.shape]
    if padding == "valid":
        margins = [(0, 0), (0, 0)]
    elif padding == "full":
        margins = [(s - 1, s - 1) for s in spans]
    elif padding == "same":
        totals = [max((-(-n // stride) - 1) * stride + s - n, 0) for n, s in zip(x.shape, spans)]
        margins = [(t // 2, t - t // 2) for t in totals]
    elif isinstance(padding, int) and padding >= 0:
        margins = [(padding, padding)] * 2
    else:
        raise ValueError(f"unknown padding {padding!r}")
    dilated = np.zeros(spans)
    dilated[::dilation, ::dilation] = w
    padded = np.pad(x, margins)
    if spans[0] > padded.shape[0] or spans[1] > padded.shape[1]:
        raise ValueError("the kernel does not fit")
    return scipy.signal.correlate2d(padded, dilated, mode="valid")[::stride, ::stride]
''',
            "ex4-solution": '''
import cnn_course.conv


def output_size(n, k, stride=1, padding=0, dilation=1):
    if padding not in ("same", "valid") and (isinstance(padding, str) or padding < 0):
        raise ValueError(f"bad padding {padding!r}")
    return cnn_course.conv.output_size(n, k, stride=stride, padding=padding, dilation=dilation)
''',
            "ex5-solution": '''
import cnn_course.conv


def conv2d_forward(x, w, b, stride=1):
    if np.ndim(x) != 4:
        raise ValueError("x must be (N, H, W, Cin)")
    return cnn_course.conv.conv2d(x, w, b, stride=stride, padding="valid")
''',
            "ex8-solution": '''
def conv_net_param_counts(input_shape, layers):
    import keras

    make = {"conv": lambda f, k: keras.layers.Conv2D(f, k), "maxpool": lambda s: keras.layers.MaxPooling2D(s),
            "flatten": lambda: keras.layers.Flatten(), "dense": lambda u: keras.layers.Dense(u)}
    model = keras.Sequential([keras.Input(shape=input_shape)] + [make[kind](*args) for kind, *args in layers])
    return [layer.count_params() for layer in model.layers]
''',
        },
        # correlate2d (SciPy) is also called by convolve2d, sobel_magnitude and avg_pool2d, so
        # Exercises 3, 6 and 7 lose their points too; zero_pad (Exercise 1) keeps its points.
        "rejected_cells": ["ex2-check", "ex2-hidden", "ex3-check", "ex3-hidden", "ex4-check", "ex4-hidden",
                           "ex5-check", "ex5-hidden", "ex6-check", "ex6-hidden", "ex7-check", "ex7-hidden",
                           "ex8-check", "ex8-hidden"],
    },    "ps2_keras_cnn": {
        "replacements": {
            "ex1-solution": '''
import tensorflow as tf


def conv_backward(x, w, grad_out):
    x, w, b = tf.Variable(np.asarray(x, dtype=float)), tf.Variable(np.asarray(w, dtype=float)), tf.Variable(0.0, dtype=tf.float64)
    grad_out = np.asarray(grad_out, dtype=float)
    if x.shape.rank != 2 or w.shape.rank != 2 or grad_out.shape != (x.shape[0] - w.shape[0] + 1, x.shape[1] - w.shape[1] + 1):
        raise ValueError("wrong shapes")
    with tf.GradientTape() as tape:
        y = tf.nn.conv2d(x[None, :, :, None], w[:, :, None, None], strides=1, padding="VALID")[0, :, :, 0] + b
        loss = tf.reduce_sum(y * grad_out)
    grad_x, grad_w, grad_b = tape.gradient(loss, [x, w, b])
    return grad_x.numpy(), grad_w.numpy(), float(grad_b)
''',
            "ex2-solution": '''
import tensorflow as tf


def max_pool_backward(x, grad_out, size=2):
    x, grad_out = np.asarray(x, dtype=float), np.asarray(grad_out, dtype=float)
    if x.ndim != 2 or not 1 <= size <= min(x.shape) or grad_out.shape != (x.shape[0] // size, x.shape[1] // size):
        raise ValueError("wrong shapes")
    image = tf.Variable(x[None, :, :, None])
    with tf.GradientTape() as tape:
        pooled = tf.nn.max_pool2d(image, size, size, "VALID")[0, :, :, 0]
        loss = tf.reduce_sum(pooled * grad_out)
    return tape.gradient(loss, image).numpy()[0, :, :, 0]
''',
            # A ready-made network from keras.applications, padded to its smallest input size.
            "ex5-solution": '''
def build_model():
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.ZeroPadding2D(2),
        keras.applications.MobileNetV2(input_shape=(32, 32, 1), alpha=0.35, weights=None, classes=10),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
''',
            # Not trained: the checks reject build_model before they look at training.
            "ex6-solution": '''
model = build_model()
''',
        },
        # conv_backward (TensorFlow) is also what check_conv_gradients checks by default, so
        # Exercise 4 loses its points too; numerical_gradient (Exercise 3) keeps its points.
        "rejected_cells": ["ex1-check", "ex1-hidden", "ex2-check", "ex2-hidden", "ex4-check", "ex4-hidden",
                           "ex5-check", "ex5-hidden", "sanity-initial-loss", "sanity-overfit",
                           "ex6-check", "ex6-hidden"],
    },
    "ps3_deeper_networks": {
        "replacements": {
            "ex1-solution": '''
import keras


def batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.99, eps=1e-3):
    x = np.asarray(x, dtype=np.float64)
    weights = [np.asarray(value, dtype=np.float64) for value in (gamma, beta, running_mean, running_var)]
    if x.ndim < 2 or any(weight.shape != (x.shape[-1],) for weight in weights):
        raise ValueError("wrong shapes")
    layer = keras.layers.BatchNormalization(momentum=momentum, epsilon=eps, dtype="float64")
    layer.build(x.shape)
    layer.set_weights(weights)
    out = keras.ops.convert_to_numpy(layer(x, training=training))
    new_mean, new_var = (keras.ops.convert_to_numpy(value) for value in (layer.moving_mean, layer.moving_variance))
    return out, new_mean, new_var, (x, *weights, bool(training), float(eps))
''',
            "ex2-solution": '''
import tensorflow as tf


def batch_norm_backward(dout, cache):
    x, gamma, beta, running_mean, running_var, training, eps = cache
    dout = np.asarray(dout, dtype=np.float64)
    if dout.shape != np.shape(x):
        raise ValueError("dout must have the shape of x")
    x, gamma, beta = (tf.Variable(np.asarray(value, dtype=np.float64)) for value in (x, gamma, beta))
    with tf.GradientTape() as tape:
        if training:
            mean, variance = tf.nn.moments(x, list(range(len(x.shape) - 1)))
        else:
            mean, variance = tf.constant(running_mean), tf.constant(running_var)
        loss = tf.reduce_sum(tf.nn.batch_normalization(x, mean, variance, beta, gamma, eps) * dout)
    return tuple(gradient.numpy() for gradient in tape.gradient(loss, [x, gamma, beta]))
''',
            "ex3-solution": '''
from cnn_course.architectures import residual_block as library_residual_block


def residual_block(x, filters, stride=1):
    return library_residual_block(x, filters, stride)


def residual_block_model(input_shape, filters, stride=1):
    inputs = keras.Input(shape=input_shape)
    return keras.Model(inputs, residual_block(inputs, filters, stride))
''',
            "ex4-solution": '''
from cnn_course.architectures import inception_module as library_inception_module


def inception_module(x, f1, f3_reduce, f3, f5_reduce, f5, pool_proj):
    return library_inception_module(x, f1, f3_reduce, f3, f5_reduce, f5, pool_proj)


def inception_module_model(input_shape, f1, f3_reduce, f3, f5_reduce, f5, pool_proj):
    inputs = keras.Input(shape=input_shape)
    return keras.Model(inputs, inception_module(inputs, f1, f3_reduce, f3, f5_reduce, f5, pool_proj))
''',
            # Not trained (the solution's training would cost another minute and a half): the checks
            # reject build_resnet, whose blocks come from cnn_course, before they look at training.
            "ex5-train-solution": '''
model = build_resnet()
training_history = {"loss": [2.3], "accuracy": [0.1], "val_loss": [2.3], "val_accuracy": [0.1]}
''',
        },
        # build_resnet uses residual_block (cnn_course), so Exercise 5 loses its points too.
        "rejected_cells": ["ex1-check", "ex1-hidden", "ex2-check", "ex2-hidden", "ex3-check", "ex3-hidden",
                           "ex4-check", "ex4-hidden", "ex5-check", "ex5-hidden", "ex5-train-check",
                           "ex5-train-hidden"],
    },
    "ps4_transfer_learning": {
        "replacements": {
            "ex1-solution": '''
from cnn_course.transfer import cache_features, feature_extractor


def extract_features(base, images, batch_size=32):
    return cache_features(feature_extractor(base), images, batch_size=batch_size)
''',
            "ex2-solution": '''
from cnn_course.transfer import head_on_features


def train_head(features_train, y_train, features_val, y_val):
    classes = int(np.max(y_train)) + 1
    logits = head_on_features(classes, features_train.shape[1], dropout=0.3)
    head = keras.Sequential([keras.Input(shape=(features_train.shape[1],)), logits, keras.layers.Softmax()])
    head.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    head.fit(features_train, y_train, batch_size=len(features_train), epochs=30, verbose=0)
    return head
''',
            "ex3-solution": '''
from cnn_course.transfer import frozen_base_with_head


def build_transfer_model(base, head):
    return frozen_base_with_head(base, head=head)
''',
            "ex4-solution": '''
from cnn_course.transfer import unfreeze_top


def unfreeze_top_blocks(base, n_blocks):
    unfreeze_top(base, n_blocks)
    return base
''',
        },
        # Exercise 5's cell is the solution's: it calls these functions in the student's own run,
        # where cnn_course works, and its values (a fine-tuned model, the numbers) pass.
        "rejected_cells": ["ex1-check", "ex1-hidden", "ex2-check", "ex2-hidden", "ex3-check", "ex3-hidden",
                           "ex4-check", "ex4-hidden"],
    },
    "ps5_adversarial": {
        "replacements": {
            "ex1-solution": '''
from cnn_course.adversarial import fgsm as library_fgsm


def fgsm(model, x, y, eps):
    return library_fgsm(model, x, y, eps, clip=(0.0, 255.0))
''',
            "ex2-solution": '''
from cnn_course.adversarial import gradient_sign


def accuracy_table(model, x, y, eps_values):
    signs = gradient_sign(model, x, y, clip=(0.0, 255.0))
    table = []
    for eps in eps_values:
        scores = keras.ops.convert_to_numpy(model(np.clip(x + eps * signs, 0, 255).astype(np.float32), training=False))
        table.append(float(np.mean(np.argmax(scores, axis=1) == np.asarray(y))))
    return table
''',
            "ex3-solution": '''
from cnn_course.adversarial import pgd


def targeted_attack(model, x, target, eps, step, steps):
    if steps == 0:
        return np.array(x, dtype=np.float32)
    return pgd(model, x, target, eps, step, steps, targeted=True, random_start=False, clip=(0.0, 255.0))
''',
        },
        # Exercise 4's cell is the solution's: it calls targeted_attack in the student's own run,
        # where cnn_course works, so its numbers are right and the hidden test (which checks them
        # against a reference) passes; the check measures them again with targeted_attack and fails.
        "rejected_cells": ["ex1-check", "ex1-hidden", "ex2-check", "ex2-hidden", "ex3-check", "ex3-hidden",
                           "ex4-check"],
    },
    "ps6_detection_segmentation": {
        "replacements": {
            "ex1-solution": '''
from cnn_course.detection import iou as library_iou


def iou(boxes_a, boxes_b):
    a, b = np.asarray(boxes_a, dtype=float).reshape(-1, 4), np.asarray(boxes_b, dtype=float).reshape(-1, 4)
    return library_iou(a, b) if len(a) and len(b) else np.zeros((len(a), len(b)))
''',
            "ex2-solution": '''
def nms(boxes, scores, iou_threshold):
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    return tf.image.non_max_suppression(boxes, np.asarray(scores, dtype=np.float32), max_output_size=len(boxes),
                                        iou_threshold=iou_threshold).numpy()
''',
            "ex3-solution": '''
def focal_loss(y_true, p, gamma=2.0, alpha=0.25):
    if alpha is None:
        loss = keras.losses.BinaryFocalCrossentropy(gamma=gamma)
    else:
        loss = keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=alpha, gamma=gamma)
    y, p = np.asarray(y_true, dtype=np.float32), np.asarray(p, dtype=np.float32)
    return float(keras.ops.convert_to_numpy(loss(y.reshape(-1, 1), p.reshape(-1, 1))))
''',
            "ex4-solution": '''
from cnn_course import segmentation


def iou_score(mask_true, mask_pred):
    return float(segmentation.iou_score(np.asarray(mask_true).astype(bool), np.asarray(mask_pred).astype(bool)))


def dice(mask_true, mask_pred):
    return float(segmentation.dice(np.asarray(mask_true).astype(bool), np.asarray(mask_pred).astype(bool)))
''',
            "ex5-solution": '''
from cnn_course.segmentation import unet


def build_unet(input_shape, depth, base_filters):
    return unet(input_shape, depth=depth, base_filters=base_filters)
''',
        },
        # Exercise 6's training cell is the solution's: it runs in the student's own run, where
        # cnn_course works, and trains a good U-Net made by the library's builder; both of its tests
        # call build_unet again to check the model's layers, and that call is served where
        # cnn_course is a stub.
        "rejected_cells": ["ex1-check", "ex1-hidden", "ex2-check", "ex2-hidden", "ex3-check", "ex3-hidden",
                           "ex4-check", "ex4-hidden", "ex5-check", "ex5-hidden", "ex6-check", "ex6-hidden"],
    },
}

# What a check shows when it rejects a library answer: the grader serves the student's functions
# from a run where the forbidden packages are inert stubs; PS2's build_model, which must use Keras,
# comes from the normal run and its result is checked for a ready-made model inside.
LIBRARY_REJECTED = ("is not available while this problem set is graded", "ready-made model")

# Colour codes in tracebacks (students see the text without them).
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
# The widest line a student should have to read in an output: JupyterLab does not wrap
# tracebacks, so longer lines of a failed check end behind a scrollbar.
MAX_OUTPUT_COLUMNS = 90

# Markers of text that must never reach students (nbgrader's default delimiters).
SECRET_MARKERS = [
    ("BEGIN SOLUTION", "END SOLUTION"),
    ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS"),
    ("BEGIN MARK SCHEME", "END MARK SCHEME"),
]


# --------------------------------------------------------------------------- helpers


def notebook_names(folder):
    return sorted(path.name for path in Path(folder).glob("*.ipynb"))


def nbgrader_meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def split_secret_lines(cell):
    """Return (secret, public) lists of stripped non-empty source lines of a source cell."""
    lines = cell["source"].splitlines()
    meta = nbgrader_meta(cell)
    has_markers = any(begin in line for line in lines for begin, _ in SECRET_MARKERS)
    if meta.get("solution") and not has_markers:
        # A solution cell without delimiters is replaced as a whole by nbgrader.
        return [line.strip() for line in lines if line.strip()], []
    secret, public, end_marker = [], [], None
    for line in lines:
        text = line.strip()
        if end_marker is None:
            end_marker = next((end for begin, end in SECRET_MARKERS if begin in text), None)
            if end_marker is None and text:
                public.append(text)
        elif end_marker in text:
            end_marker = None
        elif text:
            secret.append(text)
    return secret, public


def hidden_test_lines(source):
    """Stripped lines that occur only between the hidden-test markers of a source notebook.

    Lines that also occur anywhere else in it (in visible code, a solution, the text), alone
    or inside a longer line, prove nothing when found in a student's feedback: they are left out.
    """
    hidden, elsewhere = set(), set()
    for cell in source.cells:
        inside = False
        for line in cell.source.splitlines():
            text = line.strip()
            if "BEGIN HIDDEN TESTS" in text:
                inside = True
            elif "END HIDDEN TESTS" in text:
                inside = False
            elif text:
                (hidden if inside and cell.cell_type == "code" else elsewhere).add(text)
    return {line for line in hidden - elsewhere if not any(line in other for other in elsewhere)}


def hidden_lines_in(text, hidden_lines):
    """The hidden-test lines that `text` shows: as a line of code, or in a traceback's code line."""
    shown = set()
    for line in text.splitlines():
        # Tracebacks print code as "---> 12 code" or "     12 code".
        shown.add(re.sub(r"^(-*>)?\s*\d+\s", "", line.strip()).strip())
        shown.add(line.strip())
    return sorted(line for line in hidden_lines if line in shown or (len(line) >= 24 and line in text))


def secret_from(course, name, student, notebook_name, hidden_lines):
    """The hidden-test lines that must not reach this student: those not in the code they handed in."""
    submitted = course["course_dir"] / course["config"].submitted_directory / student / name / notebook_name
    notebook = nbformat.read(submitted, as_version=4)
    own = {line.strip() for cell in notebook.cells if cell.cell_type == "code"
           and (nbgrader_meta(cell).get("solution") or not nbgrader_meta(cell)) for line in cell.source.splitlines()}
    return {line for line in hidden_lines if not any(line in own_line for own_line in own)}


def student_submission(source, release, replacements=None):
    """The release as a student hands it in: each solution cell answered with the source's solution.

    The answer is the source cell without nbgrader's solution delimiters, or the text that
    `replacements` gives for that grade_id; every other cell (and all metadata) stays as released.
    """
    answers = {nbgrader_meta(cell).get("grade_id"): cell.source for cell in source.cells
               if nbgrader_meta(cell).get("solution")}
    replacements = replacements or {}
    missing = set(replacements) - set(answers)
    assert not missing, f"LIBRARY_ANSWERS names cells that are not solution cells: {sorted(missing)}"
    notebook = nbformat.from_dict(json.loads(json.dumps(release)))
    for cell in notebook.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if nbgrader_meta(cell).get("solution"):
            if grade_id in replacements:
                cell.source = replacements[grade_id].strip("\n")
            else:
                cell.source = "\n".join(line for line in answers[grade_id].splitlines()
                                        if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)
    return notebook


def read_grades(db_url, course_id, assignment, students):
    """Return {student: {"score", "max_score", "notebooks": {notebook: (score, max_score)},
    "cells": {(notebook, grade_id): (auto_score, max_score, needs_manual)}}}."""
    from nbgrader.api import Gradebook

    grades = {}
    with Gradebook(db_url, course_id) as gradebook:
        for student in students:
            submission = gradebook.find_submission(assignment, student)
            cells, notebooks = {}, {}
            for notebook in submission.notebooks:
                notebooks[notebook.name] = (notebook.score, notebook.max_score)
                for grade in notebook.grades:
                    cells[(notebook.name, grade.name)] = (grade.auto_score, grade.max_score, grade.needs_manual_grade)
            grades[student] = {"score": submission.score, "max_score": submission.max_score,
                               "cells": cells, "notebooks": notebooks}
    return grades


def grading_options():
    """Sandbox options of the grading command: real sandboxes, or (laptop only) none."""
    from cnn_course.grading.sandbox import sandbox_status

    available, why = sandbox_status()
    if available:
        return []
    if os.environ.get("CI"):
        pytest.fail(f"CI must grade in real sandboxes: {why}")
    # Our own notebooks are trusted: a laptop without bubblewrap (macOS) still gets the round trip.
    return ["--unsafe-no-sandbox"]


def autograde(course_dir, name):
    """Run `python -m cnn_course.grading autograde name --workers 2` in course_dir, as an instructor would."""
    command = [sys.executable, "-m", "cnn_course.grading", "autograde", name, "--workers", "2", "--no-progress",
               *grading_options()]
    env = release_tool.nbgrader_environment()
    env["NBGRADER_EXCHANGE"] = str(Path(course_dir) / "exchange-from-env")
    started = time.monotonic()
    result = subprocess.run(command, cwd=course_dir, env=env, capture_output=True, text=True)
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command[1:])} exited with {result.returncode}:\n{log[-4000:]}"
    return log, time.monotonic() - started


def run_nbgrader(course_dir, *args):
    """Run one nbgrader command in course_dir; fail the test with nbgrader's log if it fails."""
    env = release_tool.nbgrader_environment()
    env["NBGRADER_EXCHANGE"] = str(Path(course_dir) / "exchange-from-env")
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, f"nbgrader {' '.join(args)} exited with {result.returncode}:\n{result.stderr[-4000:]}"
    return result


def read_table(csv_path):
    """The grader's per-student table: {student: row}."""
    with open(csv_path, newline="", encoding="utf-8") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def build_graded_course(names, course_dir):
    """Release, submit, autograde and give feedback for the assignments `names` inside course_dir.

    Returns {name: results}. nbgrader runs twice in all (release and feedback of every
    assignment at once) and the course's grader once per assignment.
    """
    course_dir = Path(course_dir)
    shutil.copy(CONFIG_FILE, course_dir / "nbgrader_config.py")
    skip_checkpoints = shutil.ignore_patterns(".ipynb_checkpoints")
    for name in names:
        shutil.copytree(SOLUTIONS_DIR / name, course_dir / "solutions" / name, ignore=skip_checkpoints)
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course_dir)).load_config()
    coursedir_config = config.CourseDirectory

    try:
        release_tool.generate_release("*", course_root=course_dir, env={
            **os.environ, "NBGRADER_EXCHANGE": str(course_dir / "exchange-from-env")})
    except subprocess.CalledProcessError as error:
        pytest.fail(f"nbgrader generate_assignment failed:\n{error.stderr[-4000:]}")

    submitted_root = course_dir / coursedir_config.submitted_directory
    students_of = {}
    for name in names:
        release_dir = course_dir / coursedir_config.release_directory / name
        students = [SOLUTION_STUDENT, BLANK_STUDENT] + ([LIBRARY_STUDENT] if name in LIBRARY_ANSWERS else [])
        for notebook_name in notebook_names(SOLUTIONS_DIR / name):
            source = nbformat.read(SOLUTIONS_DIR / name / notebook_name, as_version=4)
            release = nbformat.read(release_dir / notebook_name, as_version=4)
            submissions = {SOLUTION_STUDENT: student_submission(source, release), BLANK_STUDENT: release}
            if name in LIBRARY_ANSWERS:
                submissions[LIBRARY_STUDENT] = student_submission(source, release,
                                                                  LIBRARY_ANSWERS[name]["replacements"])
            for student, notebook in submissions.items():
                target = submitted_root / student / name / notebook_name
                target.parent.mkdir(parents=True, exist_ok=True)
                nbformat.write(notebook, target)
        students_of[name] = students

    logs = {name: autograde(course_dir, name) for name in names}
    run_nbgrader(course_dir, "generate_feedback", "*")

    def autograded_dir(name):
        return lambda student: course_dir / coursedir_config.autograded_directory / student / name

    def feedback_dir(name):
        return lambda student: course_dir / coursedir_config.feedback_directory / student / name

    return {name: {
        "config": coursedir_config,
        "full_config": config,
        "course_dir": course_dir,
        "release_dir": course_dir / coursedir_config.release_directory / name,
        "autograde_log": logs[name][0],
        "autograde_seconds": logs[name][1],
        "table": read_table(course_dir / "nbgrader" / "grading" / name / "grades.csv"),
        "grades": read_grades(coursedir_config.db_url, coursedir_config.course_id, name, students_of[name]),
        "autograded_dir": autograded_dir(name),
        "feedback_dir": feedback_dir(name),
    } for name in names}


def selected_assignments(session):
    """The assignments that the selected tests of this module are parametrized with (all if none)."""
    names = set()
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if item.path == Path(__file__) and callspec is not None and "name" in callspec.params:
            names.add(callspec.params["name"])
    return sorted(names) or ASSIGNMENTS


@pytest.fixture(scope="session")
def graded_course(request, tmp_path_factory):
    """graded_course(name) -> results of build_graded_course for that assignment.

    The first call grades every assignment that a selected test needs, in one course folder.
    """
    built = {}

    def get(name):
        if name not in built:
            names = sorted(set(selected_assignments(request.session)) - set(built) | {name})
            built.update(build_graded_course(names, tmp_path_factory.mktemp("course")))
        return built[name]

    return get


def error_text(output):
    """What a student sees of an error output: its traceback without colour codes."""
    return ANSI_ESCAPE.sub("", "\n".join(output.get("traceback", [])))


def output_text(output):
    """All text of one output (stream text, plain-text data, error name, message and traceback)."""
    if output.output_type == "stream":
        return output.text
    if output.output_type == "error":
        return f"{output.ename}: {output.evalue}\n{error_text(output)}"
    return str(output.get("data", {}).get("text/plain", ""))


def source_points(name):
    return sum(nbgrader_meta(cell).get("points", 0)
               for notebook_name in notebook_names(SOLUTIONS_DIR / name)
               for cell in nbformat.read(SOLUTIONS_DIR / name / notebook_name, as_version=4).cells
               if nbgrader_meta(cell).get("grade"))


# --------------------------------------------------------------------------- tests


def test_assignments_are_found():
    assert ASSIGNMENTS, f"no assignment folders with notebooks in {SOLUTIONS_DIR}"
    assert set(ASSIGNMENTS) == {path.name for path in RELEASES_DIR.iterdir() if path.is_dir()}, (
        "solutions/ and assignments/ should hold the same assignments; run `.venv/bin/python tools/release.py`")


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_config_paths_follow_the_course_folder(name, graded_course):
    course = graded_course(name)
    config = course["config"]
    assert Path(config.root) == course["course_dir"], "CourseDirectory.root must be the folder of nbgrader_config.py"
    assert course["release_dir"] == course["course_dir"] / "assignments" / name
    assert config.db_url == f"sqlite:///{course['course_dir'] / 'nbgrader' / 'gradebook.db'}"
    assert (course["course_dir"] / "nbgrader" / "gradebook.db").is_file()
    full_config = course["full_config"]
    if "NBGRADER_EXCHANGE" not in os.environ:
        assert Path(full_config.Exchange.root) == course["course_dir"] / "nbgrader" / "exchange"
    assert Path(full_config.Exchange.root).is_dir(), "the config should create the exchange folder"
    assert full_config.Execute.timeout >= 300, "training cells need minutes; nbgrader's default is 30 s"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_committed_release_is_up_to_date(name, graded_course):
    regenerated_dir = graded_course(name)["release_dir"]
    committed_dir = RELEASES_DIR / name
    hint = f"assignments/{name}/ is out of date; run `.venv/bin/python tools/release.py {name}` and commit it"
    assert notebook_names(committed_dir) == notebook_names(regenerated_dir) == notebook_names(SOLUTIONS_DIR / name), hint
    for notebook_name in notebook_names(committed_dir):
        committed = json.loads((committed_dir / notebook_name).read_text(encoding="utf-8"))
        regenerated = json.loads((regenerated_dir / notebook_name).read_text(encoding="utf-8"))
        assert len(committed["cells"]) == len(regenerated["cells"]), hint
        for committed_cell, regenerated_cell in zip(committed["cells"], regenerated["cells"], strict=True):
            assert committed_cell == regenerated_cell, f"{hint} (first difference in cell {committed_cell.get('id')})"
        assert committed == regenerated, f"{hint} (notebook metadata differs)"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_release_hides_solutions_and_hidden_tests(name):
    secret_total = 0
    for notebook_name in notebook_names(SOLUTIONS_DIR / name):
        source = nbformat.read(SOLUTIONS_DIR / name / notebook_name, as_version=4)
        release = nbformat.read(RELEASES_DIR / name / notebook_name, as_version=4)
        secret, public = set(), set()
        for cell in source.cells:
            cell_secret, cell_public = split_secret_lines(cell)
            secret.update(cell_secret)
            public.update(cell_public)
        # Lines that occur only inside solution / hidden-test blocks must not appear in the
        # release; lines like `pass` that also occur in visible code are not evidence of a leak.
        only_secret = secret - public
        secret_total += len(only_secret)
        release_lines = {line.strip() for cell in release.cells for line in cell.source.splitlines()}
        leaked = sorted(only_secret & release_lines)
        assert not leaked, f"{name}/{notebook_name}: the release contains solution or hidden-test lines: {leaked[:5]}"
        for cell in release.cells:
            for begin, end in SECRET_MARKERS:
                assert begin not in cell.source and end not in cell.source, f"marker {begin!r} left in cell {cell.id}"
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"cell {cell.id} of the release has outputs"
    assert secret_total > 0, f"{name} has no solution or hidden-test blocks, so students would see everything"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_source_notebook_gets_full_marks(name, graded_course):
    result = graded_course(name)["grades"][SOLUTION_STUDENT]
    expected_points = source_points(name)
    assert expected_points > 0, f"{name} has no points"
    assert result["max_score"] == expected_points
    failed = {cell: (score, max_score) for cell, (score, max_score, _) in result["cells"].items() if score != max_score}
    assert not failed, f"the source notebook loses points in {failed}; see autograded/{SOLUTION_STUDENT}"
    assert result["score"] == result["max_score"]


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solution_notebook_runs_top_to_bottom_when_autograded(name, graded_course, notebook_times):
    """The autograde of the solutions is the suite's run of the source notebook (test_notebooks skips solutions/).

    Its time in the run-time table is what the grader took for that submission (the student's
    run, the restricted run and the tests), from the grader's per-student table.
    """
    course = graded_course(name)
    row = course["table"][SOLUTION_STUDENT]
    assert (row["status"], row["problems"]) == ("graded", ""), (
        f"{name}: the grader reports problems with the solutions: {row['status']}: {row['problems']}")
    for notebook_name in notebook_names(SOLUTIONS_DIR / name):
        notebook = nbformat.read(course["autograded_dir"](SOLUTION_STUDENT) / notebook_name, as_version=4)
        code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
        not_run = [cell.id for cell in code_cells if cell.execution_count is None]
        assert not not_run, f"{name}/{notebook_name}: the grader did not run cells {not_run}"
        failed = {cell.id: error_text(output)[-3000:] for cell in code_cells for output in cell.outputs
                  if output.output_type == "error"}
        assert not failed, f"{name}/{notebook_name}: cells of the source notebook raised errors: {failed}"
        # Every figure and message reaches the autograded notebook and the feedback.
        cut = [cell.id for cell in code_cells for output in cell.outputs if "[output truncated]" in output_text(output)]
        assert not cut, (f"{name}/{notebook_name}: the outputs of cells {cut} were cut at max_output_bytes_per_cell; "
                         "raise it in the notebook's cnn_course_grading metadata")
    notebook_times[f"solutions/{name}/{name}.ipynb"] = float(row["seconds"])


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_checks_of_unanswered_exercises_say_so(name, graded_course):
    """Every visible graded check of the blank release says which exercise is not answered yet.

    (A check cell ex<N>-check names Exercise N; other visible checks name the exercise they need.)
    """
    course = graded_course(name)
    checked = 0
    for notebook_name in notebook_names(course["autograded_dir"](BLANK_STUDENT)):
        source = nbformat.read(SOLUTIONS_DIR / name / notebook_name, as_version=4)
        visible_checks = {nbgrader_meta(cell)["grade_id"] for cell in source.cells
                          if nbgrader_meta(cell).get("grade") and "BEGIN HIDDEN TESTS" not in cell.source}
        notebook = nbformat.read(course["autograded_dir"](BLANK_STUDENT) / notebook_name, as_version=4)
        for cell in notebook.cells:
            grade_id = nbgrader_meta(cell).get("grade_id")
            if grade_id not in visible_checks:
                continue
            checked += 1
            shown = " ".join(" ".join(error_text(output).split()) for output in cell.outputs
                             if output.output_type == "error")
            number = re.fullmatch(r"ex(\d+)-check", grade_id)
            expected = f"Exercise {number[1]} is not answered yet" if number else "is not answered yet"
            assert expected in shown and "replace `raise notimplementederror()`" in shown.lower(), (
                f"{name}: before an answer, check {grade_id} should say {expected!r} and which "
                f"`raise NotImplementedError()` to replace; it shows:\n{shown[-2000:]}")
    assert checked, f"{name} has no visible graded check cells"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_messages_and_printed_checks_fit_the_output_area(name, graded_course):
    """Error messages, and what check cells print, are at most MAX_OUTPUT_COLUMNS wide.

    (JupyterLab does not wrap tracebacks. Lines printed by libraries in other cells, such as a
    data loader's message or Keras's progress bar, are not the problem set's to wrap, nor is the
    grader's own message that a forbidden package is not available.)
    """
    course = graded_course(name)
    too_wide = []
    for student in course["grades"]:
        for notebook_name in notebook_names(course["autograded_dir"](student)):
            notebook = nbformat.read(course["autograded_dir"](student) / notebook_name, as_version=4)
            for cell in notebook.cells:
                for output in cell.get("outputs", []):
                    if output.output_type == "stream" and output.name == "stdout":
                        lines = output.text.splitlines() if nbgrader_meta(cell).get("grade") else []
                    elif output.output_type == "error" and "Traceback (most recent call last)" in error_text(output):
                        lines = f"{output.ename}: {output.evalue}".splitlines()  # the message below the traceback
                    elif output.output_type == "error":
                        lines = error_text(output).splitlines()  # a message shown instead of a traceback
                    else:
                        continue
                    too_wide += [(student, cell.id, line) for line in lines
                                 if len(ANSI_ESCAPE.sub("", line).expandtabs()) > MAX_OUTPUT_COLUMNS
                                 and LIBRARY_REJECTED[0] not in line]
    assert not too_wide, (
        f"{name}: {len(too_wide)} output lines are wider than {MAX_OUTPUT_COLUMNS} columns; "
        f"break the message with \\n. First ones: {too_wide[:5]}")


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_blank_release_gets_zero_and_every_cell_is_graded(name, graded_course):
    course = graded_course(name)
    result = course["grades"][BLANK_STUDENT]
    assert result["max_score"] == source_points(name)
    assert len(result["cells"]) == sum(1 for nb in notebook_names(SOLUTIONS_DIR / name)
                                       for cell in nbformat.read(SOLUTIONS_DIR / name / nb, as_version=4).cells
                                       if nbgrader_meta(cell).get("grade")), "a grade cell has no grade"
    not_graded = [cell for cell, (score, _, needs_manual) in result["cells"].items() if score is None or needs_manual]
    assert not not_graded, f"the autograder left these cells of the blank release ungraded: {not_graded}"
    scored = {cell: score for cell, (score, _, _) in result["cells"].items() if score != 0}
    assert not scored, f"the blank release earns points in {scored}: those tests pass without an answer"
    assert result["score"] == 0
    for notebook_name in notebook_names(course["autograded_dir"](BLANK_STUDENT)):
        notebook = nbformat.read(course["autograded_dir"](BLANK_STUDENT) / notebook_name, as_version=4)
        code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert all(cell.execution_count is not None for cell in code_cells), "the grader stopped before the last cell"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_feedback_html_is_generated_without_hidden_tests(name, graded_course):
    course = graded_course(name)
    for notebook_name in notebook_names(SOLUTIONS_DIR / name):
        hidden_lines = hidden_test_lines(nbformat.read(SOLUTIONS_DIR / name / notebook_name, as_version=4))
        assert hidden_lines, f"{name}/{notebook_name} has no hidden tests to look for"
        for student in course["grades"]:
            html_file = course["feedback_dir"](student) / notebook_name.replace(".ipynb", ".html")
            assert html_file.is_file(), f"no feedback {html_file}"
            page = html_file.read_text(encoding="utf-8")
            assert page.lstrip().lower().startswith("<!doctype html"), f"{html_file} is not an HTML page"
            score, max_score = course["grades"][student]["notebooks"][notebook_name.removesuffix(".ipynb")]
            assert f"Score: {score:.1f} / {max_score:.1f}" in page, (
                f"the feedback for {student} does not show the score {score} / {max_score}")
            shown_text = html.unescape(re.sub(r"<[^>]*>", "", page))
            leaked = hidden_lines_in(shown_text, secret_from(course, name, student, notebook_name, hidden_lines))
            assert not leaked, f"the feedback for {student} shows hidden-test code: {leaked[:5]}"
            assert "hidden tests: passed" in shown_text or "hidden tests: failed" in shown_text


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_autograded_notebooks_hold_no_hidden_test_code_or_traceback(name, graded_course):
    """Test cells keep their visible code; a hidden part shows only "hidden tests: passed/failed"."""
    course = graded_course(name)
    for notebook_name in notebook_names(SOLUTIONS_DIR / name):
        source = nbformat.read(SOLUTIONS_DIR / name / notebook_name, as_version=4)
        hidden_lines = hidden_test_lines(source)
        release = {nbgrader_meta(cell).get("grade_id"): cell
                   for cell in nbformat.read(RELEASES_DIR / name / notebook_name, as_version=4).cells}
        hidden_cells = {nbgrader_meta(cell)["grade_id"] for cell in source.cells if "BEGIN HIDDEN TESTS" in cell.source}
        for student in course["grades"]:
            secret = secret_from(course, name, student, notebook_name, hidden_lines)
            notebook = nbformat.read(course["autograded_dir"](student) / notebook_name, as_version=4)
            for cell in notebook.cells:
                text = cell.source + "\n" + "\n".join(output_text(output) for output in cell.get("outputs", []))
                leaked = hidden_lines_in(text, secret)
                assert not leaked, f"{student}/{notebook_name}: cell {cell.id} shows hidden-test code: {leaked[:5]}"
                grade_id = nbgrader_meta(cell).get("grade_id")
                if grade_id not in hidden_cells:
                    continue
                assert cell.source == release[grade_id].source, f"{student}: test cell {grade_id} is not as released"
                verdicts = [output.text for output in cell.outputs if output.output_type == "stream"
                            and output.text in ("hidden tests: passed\n", "hidden tests: failed\n")]
                visible_code = [line for line in cell.source.splitlines() if line.strip() and not line.strip().startswith("#")]
                if not visible_code:  # all its code is hidden: no error, no traceback, only the verdict
                    assert len(verdicts) == 1 and [o.output_type for o in cell.outputs] == ["stream"], (
                        f"{student}: hidden test cell {grade_id} shows more than its verdict: {cell.outputs}")


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_gradebook_and_the_graders_table_agree(name, graded_course):
    course = graded_course(name)
    assert set(course["table"]) == set(course["grades"])
    for student, grades in course["grades"].items():
        row = course["table"][student]
        assert row["status"] == "graded", f"{student}: {row['status']}: {row['problems']}"
        assert (float(row["score"]), float(row["max_score"])) == (grades["score"], grades["max_score"]), (
            f"{student}: the table says {row['score']} / {row['max_score']}, "
            f"the gradebook {grades['score']} / {grades['max_score']}")
    assert f"Done: {len(course['grades'])} graded, 0 flagged, 0 invalid, 0 missing, 0 error." in course["autograde_log"]


@pytest.mark.parametrize("name", sorted(LIBRARY_ANSWERS))
def test_answers_that_call_a_library_lose_their_points(name, graded_course):
    course = graded_course(name)
    result = course["grades"][LIBRARY_STUDENT]
    rejected = set(LIBRARY_ANSWERS[name]["rejected_cells"])
    for (_notebook, cell), (score, max_score, _) in result["cells"].items():
        if cell in rejected:
            assert score == 0, f"{cell} gives {score} points to an answer that calls a library"
        else:
            assert score == max_score, f"{cell} should not be affected by the library answers, got {score}/{max_score}"
    # The checks fail because the library was unavailable, not for some other reason; hidden
    # tests show only their verdict.
    messages, verdicts = {}, {}
    for notebook_name in notebook_names(course["autograded_dir"](LIBRARY_STUDENT)):
        notebook = nbformat.read(course["autograded_dir"](LIBRARY_STUDENT) / notebook_name, as_version=4)
        for cell in notebook.cells:
            grade_id = nbgrader_meta(cell).get("grade_id")
            if grade_id not in rejected:
                continue
            errors = [out for out in cell.get("outputs", []) if out.output_type == "error"]
            if errors:
                messages[grade_id] = " ".join(f"{e.ename}: {e.evalue}" for e in errors)
            else:
                verdicts[grade_id] = "".join(out.get("text", "") for out in cell.outputs)
    not_detected = {cell: message for cell, message in messages.items()
                    if not any(sign in message for sign in LIBRARY_REJECTED)}
    assert not not_detected, f"these cells failed without detecting the library call: {not_detected}"
    assert all("hidden tests: failed" in verdict for verdict in verdicts.values()), verdicts
    assert set(messages) | set(verdicts) == rejected
    assert any(not cell.endswith("-hidden") for cell in messages), "no visible check said why"


def solution_and_library_answers(name: str, grade_ids: tuple[str, ...], namespace: dict) -> tuple[dict, dict]:
    """Run ``name``'s solution cells ``grade_ids`` and LIBRARY_ANSWERS' replacements of the same cells,
    each set in its own copy of ``namespace``; return the two namespaces (reference, library).

    Skips the test when the assignment is not in solutions/.
    """
    if name not in ASSIGNMENTS:
        pytest.skip(f"{name} is not in solutions/")
    source = nbformat.read(SOLUTIONS_DIR / name / f"{name}.ipynb", as_version=4)
    reference, library = dict(namespace), dict(namespace)
    for cell in source.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id in grade_ids:
            exec(cell.source, reference)  # noqa: S102 -- our own source notebook
            exec(LIBRARY_ANSWERS[name]["replacements"][grade_id], library)  # noqa: S102
    return reference, library


def test_library_answers_for_ps0_would_be_right_without_the_rule():
    """The skimage answers in LIBRARY_ANSWERS compute correct values; only the NumPy-only rule rejects them."""
    import numpy as np

    reference, library = solution_and_library_answers("ps0_images", ("ex3-solution", "ex4-solution"), {"np": np})
    image = np.arange(7 * 9 * 3, dtype=np.uint8).reshape(7, 9, 3)
    for height, width in [(3, 4), (7, 9), (1, 1), (6, 2)]:
        np.testing.assert_array_equal(library["crop_center"](image, height, width),
                                      reference["crop_center"](image, height, width))
    np.testing.assert_allclose(library["rescale_01"](image), reference["rescale_01"](image), atol=1e-7)
    assert library["rescale_01"](image).dtype == np.float32


def test_library_answers_for_ps1_would_be_right_without_the_rule():
    """The SciPy and cnn_course answers in LIBRARY_ANSWERS compute correct values; only the NumPy-only rule rejects them."""
    import numpy as np

    reference, library = solution_and_library_answers(
        "ps1_convolution", ("ex2-solution", "ex4-solution", "ex5-solution"),
        {"np": np})
    rng = np.random.default_rng(1)
    image, kernel = rng.normal(size=(9, 11)), rng.normal(size=(3, 2))
    for stride, padding, dilation in [(1, "valid", 1), (2, "same", 1), (1, "full", 2), (3, 1, 1), (2, "same", 2)]:
        options = {"stride": stride, "padding": padding, "dilation": dilation}
        np.testing.assert_allclose(library["correlate2d"](image, kernel, **options),
                                   reference["correlate2d"](image, kernel, **options), atol=1e-9)
    for n, k, stride, padding, dilation in [(32, 3, 1, 0, 1), (32, 3, 2, 1, 1), (7, 3, 2, "same", 1), (28, 5, 1, "valid", 2)]:
        options = {"stride": stride, "padding": padding, "dilation": dilation}
        assert library["output_size"](n, k, **options) == reference["output_size"](n, k, **options)
    x, w, b = rng.normal(size=(2, 7, 8, 3)), rng.normal(size=(3, 2, 3, 4)), rng.normal(size=4)
    for stride in (1, 2):
        np.testing.assert_allclose(library["conv2d_forward"](x, w, b, stride=stride),
                                   reference["conv2d_forward"](x, w, b, stride=stride), atol=1e-9)


def test_library_answers_for_ps2_would_be_right_without_the_rule():
    """The TensorFlow backward passes in LIBRARY_ANSWERS compute correct gradients; only the NumPy-only rule rejects them."""
    import numpy as np

    reference, library = solution_and_library_answers(
        "ps2_keras_cnn", ("ex1-solution", "ex2-solution"),
        {"np": np})
    rng = np.random.default_rng(2)
    for x_shape, w_shape in [((5, 6), (2, 3)), ((4, 4), (4, 4)), ((7, 3), (3, 1))]:
        x, w = rng.normal(size=x_shape), rng.normal(size=w_shape)
        grad_out = rng.normal(size=(x_shape[0] - w_shape[0] + 1, x_shape[1] - w_shape[1] + 1))
        for got, expected in zip(library["conv_backward"](x, w, grad_out), reference["conv_backward"](x, w, grad_out),
                                 strict=True):
            np.testing.assert_allclose(got, expected, atol=1e-9)
    for shape, size in [((6, 6), 2), ((7, 9), 3), ((5, 4), 1)]:
        x = rng.normal(size=shape)  # no ties, where TensorFlow might pick another maximum
        grad_out = rng.normal(size=(shape[0] // size, shape[1] // size))
        np.testing.assert_allclose(library["max_pool_backward"](x, grad_out, size=size),
                                   reference["max_pool_backward"](x, grad_out, size=size), atol=1e-12)


def test_library_answers_for_ps3_would_be_right_without_the_rule():
    """The Keras, TensorFlow and cnn_course answers in LIBRARY_ANSWERS compute what the solutions compute;
    only the rules (NumPy only in Part A, no cnn_course in Part B) reject them."""
    import numpy as np

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    reference, library = solution_and_library_answers(
        "ps3_deeper_networks", ("ex1-solution", "ex2-solution", "ex3-solution", "ex4-solution"),
        {"np": np, "keras": keras})
    rng = np.random.default_rng(3)
    for shape, training, momentum, eps in [((6, 3), True, 0.99, 1e-3), ((2, 4, 3, 2), True, 0.9, 1e-5),
                                           ((5, 2), False, 0.99, 1e-3), ((1, 3, 3, 4), False, 0.5, 0.1)]:
        channels = shape[-1]
        arguments = [rng.normal(loc=1.0, scale=2.0, size=shape), rng.normal(size=channels), rng.normal(size=channels),
                     rng.normal(size=channels), rng.uniform(0.5, 2.0, size=channels), training]
        options = {"momentum": momentum, "eps": eps}
        dout = rng.normal(size=shape)
        got, expected = library["batch_norm_forward"](*arguments, **options), reference["batch_norm_forward"](*arguments, **options)
        for got_array, expected_array in zip(got[:3], expected[:3], strict=True):
            np.testing.assert_allclose(got_array, expected_array, rtol=1e-9, atol=1e-9)
        for got_array, expected_array in zip(library["batch_norm_backward"](dout, got[3]),
                                             reference["batch_norm_backward"](dout, expected[3]), strict=True):
            np.testing.assert_allclose(got_array, expected_array, rtol=1e-9, atol=1e-9)
    for input_shape, filters, stride in [((8, 8, 4), 4, 1), ((9, 9, 3), 6, 2), ((6, 6, 5), 8, 1)]:
        got = library["residual_block_model"](input_shape, filters, stride)
        expected = reference["residual_block_model"](input_shape, filters, stride)
        assert (got.output_shape, got.count_params()) == (expected.output_shape, expected.count_params())
    for input_shape, filters in [((28, 28, 192), (64, 96, 128, 16, 32, 32)), ((7, 5, 3), (2, 3, 4, 1, 2, 3))]:
        got = library["inception_module_model"](input_shape, *filters)
        expected = reference["inception_module_model"](input_shape, *filters)
        assert (got.output_shape, got.count_params()) == (expected.output_shape, expected.count_params())


def test_library_answers_for_ps5_would_be_right_without_the_rule():
    """The cnn_course.adversarial answers in LIBRARY_ANSWERS compute what the solutions compute;
    only the rule (no cnn_course in the answers) rejects them."""
    import numpy as np

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    reference, library = solution_and_library_answers(
        "ps5_adversarial", ("ex1-solution", "ex2-solution", "ex3-solution"),
        {"np": np, "keras": keras, "tf": tf})
    # A small convolutional network with logits out, random weights, images in [0, 255].
    inputs = keras.Input((10, 10, 2))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(6, 3, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(4)(x))
    rng = np.random.default_rng(5)
    model.set_weights([rng.normal(scale=0.5, size=w.shape).astype(np.float32) for w in model.weights])
    images = rng.choice([0.0, 255.0, 40.0, 128.0, 250.0], size=(9, 10, 10, 2)).astype(np.float32)
    labels = rng.integers(0, 4, size=9)
    for eps in (0.0, 5.0, 30.0):
        np.testing.assert_allclose(library["fgsm"](model, images, labels, eps),
                                   reference["fgsm"](model, images, labels, eps), atol=1e-3)
    eps_values = (0.0, 8.0, 64.0)
    assert library["accuracy_table"](model, images, labels, eps_values) == reference["accuracy_table"](
        model, images, labels, eps_values)
    for target, eps, step, steps in ((labels[::-1].copy(), 12.0, 5.0, 4), (2, 6.0, 20.0, 2), (1, 10.0, 3.0, 0)):
        np.testing.assert_allclose(library["targeted_attack"](model, images, target, eps, step, steps),
                                   reference["targeted_attack"](model, images, target, eps, step, steps), atol=1e-3)



def test_library_answers_for_ps6_would_be_right_without_the_rule():
    """The cnn_course, TensorFlow and Keras answers in LIBRARY_ANSWERS compute what the solutions compute;
    only the rules (NumPy only in Exercises 1-4, no cnn_course anywhere) reject them."""
    import numpy as np

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    reference, library = solution_and_library_answers(
        "ps6_detection_segmentation", ("ex1-solution", "ex2-solution", "ex3-solution", "ex4-solution", "ex5-solution"),
        {"np": np, "keras": keras, "tf": tf})
    rng = np.random.default_rng(6)
    for n, m, threshold in ((12, 7, 0.5), (30, 30, 0.3), (1, 5, 0.0), (0, 4, 0.7)):
        corners_a, corners_b = rng.integers(0, 30, size=(n, 2)), rng.integers(0, 30, size=(m, 2))
        boxes_a = np.concatenate([corners_a, corners_a + rng.integers(0, 15, size=(n, 2))], axis=1).astype(float)
        boxes_b = np.concatenate([corners_b, corners_b + rng.integers(0, 15, size=(m, 2))], axis=1).astype(float)
        np.testing.assert_allclose(library["iou"](boxes_a, boxes_b), reference["iou"](boxes_a, boxes_b), atol=1e-12)
        scores = rng.choice([0.1, 0.4, 0.4, 0.9], size=n)
        assert (np.asarray(library["nms"](boxes_a, scores, threshold)).tolist()
                == reference["nms"](boxes_a, scores, threshold).tolist())
    for shape, gamma, alpha in (((6, 4), 2.0, 0.25), ((20,), 0.0, None), ((3, 5, 2), 1.5, 0.8), ((9, 1), 3.0, None)):
        labels, probabilities = rng.integers(0, 2, size=shape), rng.uniform(0.001, 0.999, size=shape)
        np.testing.assert_allclose(library["focal_loss"](labels, probabilities, gamma=gamma, alpha=alpha),
                                   reference["focal_loss"](labels, probabilities, gamma=gamma, alpha=alpha), rtol=1e-4)
    for shape in ((5, 7), (2, 8, 8, 1)):
        truth, guess = rng.random(shape) < 0.3, (rng.random(shape) < 0.4).astype(np.uint8)
        for name in ("iou_score", "dice"):
            assert np.isclose(library[name](truth, guess), reference[name](truth, guess))
            assert library[name](truth & False, guess * 0) == reference[name](truth & False, guess * 0) == 1.0
    for input_shape, depth, base_filters in (((32, 32, 1), 2, 4), ((None, None, 3), 3, 2)):
        got = library["build_unet"](input_shape, depth, base_filters)
        expected = reference["build_unet"](input_shape, depth, base_filters)
        assert (got.output_shape, got.count_params()) == (expected.output_shape, expected.count_params())
        assert ([type(layer).__name__ for layer in got.layers if type(layer).__name__ != "Activation"]
                == [type(layer).__name__ for layer in expected.layers])


def _toy_mobilenet(keras, blocks, seed):
    # A small network named like torchvision's MobileNetV2 (features_0 stem, blocks
    # features_<k>_conv_..., last 1x1 convolution features_<blocks + 1>), random BN statistics.
    import numpy as np

    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False, name="features_0_0")(inputs)
    x = keras.layers.BatchNormalization(name="features_0_1")(x)
    for k in range(1, blocks + 1):
        y = keras.layers.Conv2D(8, 1, use_bias=False, name=f"features_{k}_conv_0_0")(x)
        y = keras.layers.BatchNormalization(name=f"features_{k}_conv_0_1")(y)
        y = keras.layers.Conv2D(4, 1, use_bias=False, name=f"features_{k}_conv_1")(y)
        x = keras.layers.Add(name=f"features_{k}_add")([x, y])
    x = keras.layers.Conv2D(6, 1, name=f"features_{blocks + 1}_0")(x)
    x = keras.layers.BatchNormalization(name=f"features_{blocks + 1}_1")(x)
    model = keras.Model(inputs, x)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.uniform(0.5, 1.5, size=w.shape) if w.name in ("moving_variance", "gamma")
                       else rng.normal(scale=0.3, size=w.shape) for w in model.weights])
    return model


def test_library_answers_for_ps4_would_be_right_without_the_rule():
    """The cnn_course.transfer answers in LIBRARY_ANSWERS compute what the solutions compute;
    only the rule (no cnn_course in the answers) rejects them."""
    import re as re_module

    import numpy as np

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    reference, library = solution_and_library_answers(
        "ps4_transfer_learning", ("ex1-solution", "ex2-solution", "ex3-solution", "ex4-solution"),
        {"np": np, "keras": keras, "re": re_module})
    rng = np.random.default_rng(4)
    images = rng.uniform(-1, 1, size=(11, 16, 16, 3)).astype(np.float32)
    base = _toy_mobilenet(keras, 4, seed=5)
    for batch_size in (3, 32):
        np.testing.assert_allclose(library["extract_features"](base, images, batch_size=batch_size),
                                   reference["extract_features"](base, images, batch_size=batch_size), atol=1e-5)
    # Heads: both learn a separable 2-class problem on 6 features.
    labels = rng.integers(0, 2, size=60)
    features = (rng.normal(size=(60, 6)) + 2.0 * (2 * labels[:, None] - 1)).astype(np.float32)
    for answers in (library, reference):
        keras.utils.set_random_seed(0)
        head = answers["train_head"](features[:40], labels[:40], features[40:], labels[40:])
        assert head.count_params() == 6 * 2 + 2
        scores = keras.ops.convert_to_numpy(head(features[40:], training=False))
        assert np.mean(np.argmax(scores, axis=1) == labels[40:]) >= 0.9
    # The head on the frozen base: same outputs, only the head's weights trainable.
    head = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2, activation="softmax")])
    models = [answers["build_transfer_model"](_toy_mobilenet(keras, 4, seed=5), head) for answers in (library, reference)]
    np.testing.assert_allclose(*(keras.ops.convert_to_numpy(model(images, training=False)) for model in models), atol=1e-5)
    assert [len(model.trainable_weights) for model in models] == [2, 2]
    # The same layers learn again, for every number of blocks but all of them (where the library
    # also unfreezes the stem).
    for n_blocks in (0, 1, 2, 3):
        learning = []
        for answers in (library, reference):
            unfrozen = answers["unfreeze_top_blocks"](_toy_mobilenet(keras, 4, seed=5), n_blocks)
            learning.append([layer.name for layer in unfrozen.layers if layer.trainable_weights])
        assert learning[0] == learning[1], (n_blocks, learning)
