"""Distribution `keras-vs`: the keras_vs plugin, the zoo and the tuner."""

import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(
    r'^__version__ = "([^"]+)"', (HERE / "keras_vs" / "__init__.py").read_text(), re.M
).group(1)

TEST = [
    "pytest>=8",
    "pytest-xdist>=3.5",
    "hypothesis>=6.100",
    "jax>=0.4.30",  # the backend-agnostic tests also run on KERAS_BACKEND=jax
    "keras-hub>=0.32",  # backbones built from config in the test corpus
    "import-linter>=2.0",  # CI's layers contract (.importlinter)
]

setup(
    name="keras-vs",
    version=VERSION,
    description=(
        "Find, measure and fix the Dropout/BatchNormalization variance shift "
        "in Keras 3 models."
    ),
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # Every package below keras_vs, zoo and tuner (a new subpackage ships without a list to edit).
    packages=find_packages(include=["keras_vs", "keras_vs.*", "zoo", "zoo.*", "tuner", "tuner.*"]),
    install_requires=[
        # keras>=3.14: clone_model recurses into models nested more than one
        # level deep (needed by rewrite).
        "keras>=3.14",
        "tensorflow>=2.16",
        "keras-tuner>=1.4.7",
        "tensorflow-datasets>=4.9.4",
        "absl-py>=2.1",
        # keras-tuner imports tensorboard in every trial on the TF backend and
        # recent tensorflow wheels do not always pull it in.
        "tensorboard>=2.16",
        "numpy>=1.26",
        "matplotlib>=3.8",
        "scikit-learn>=1.3",  # the offline `digits` data set ships inside it
        # keras-tuner's chief/worker mode talks gRPC; tensorflow pulls it in
        # today, but `keras-vs tune` relies on it directly.
        "grpcio>=1.56",
    ],
    extras_require={
        "test": TEST,
        "jax": ["jax>=0.4.30"],
        "torch": ["torch>=2.4"],
        # The zoo's reference tests (tests/zoo/test_reference.py) compare it with
        # PyTorch versions of the reference code.
        "reference": ["torch>=2.4"],
        "cuda": ["tensorflow[and-cuda]>=2.16"],
    },
    entry_points={
        "console_scripts": ["keras-vs = keras_vs.cli:main"],
        # Commands of the other packages: the keras-vs script finds them here,
        # so the plugin never imports them (keras_vs.cli; read as a literal
        # from a source tree without installed metadata).
        "keras_vs.commands": ["tune = tuner.cli:COMMAND"],
        # Named data sets of the other packages, read as tf.data pipelines
        # (keras_vs.data: `keras-vs measure MODEL --data=cifar10`); same rules.
        "keras_vs.datasets": [
            "cifar10 = tuner.tfds:CIFAR10",
            "cifar100 = tuner.tfds:CIFAR100",
            "imagenet2012 = tuner.tfds:IMAGENET2012",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Keras",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
