"""reid_ext: five recent ReID methods as drop-in fastreid components.

``pip install .`` gives a working stack on Python 3.11: torch + torchvision as a
matching pair, fastreid 1.4.0 (installed *without* its stale pins by
``scripts/install.sh``, because pip cannot drop one package's pins), yacs, numpy,
termcolor, faiss, and what fastreid needs at run time but does not declare.
"""
import platform

from setuptools import find_packages, setup

_faiss = ("faiss-gpu>=1.15" if platform.system() == "Linux" and platform.machine() == "x86_64"
          else "faiss-cpu>=1.7.3")

setup(
    name="reid_ext",
    version="0.1.0",
    description="C2F, NFormer, AdaSP, SFT/LBR and SSR hashing as fastreid components",
    long_description=open("README.md").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["reid_ext", "reid_ext.*"]),
    package_data={"reid_ext.data": ["splits/*.json"]},
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "yacs>=0.1.8",
        "numpy>=1.24",
        "termcolor>=2.2",
        _faiss,
        # fastreid's undeclared or pinned-away run-time needs
        "opencv-python-headless",
        "scikit-learn",
        "scipy",
        "tabulate",
        "tensorboard",
        "matplotlib",
        "tqdm",
        "pillow",
        "pyyaml",
    ],
    extras_require={"test": ["pytest>=7"]},
    entry_points={"console_scripts": [
        "reid-train=reid_ext.train_net:cli",
        "reid-reproduce=reid_ext.reproduce.__main__:cli",
        "reid-visualize=reid_ext.visualize.cli:main",
        "reid-protocol=reid_ext.protocol.__main__:cli",
    ]},
)
