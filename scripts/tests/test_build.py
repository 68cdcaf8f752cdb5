"""pclib.build: a copied build tree (its CMake cache names the original
checkout) and sources newer than their objects after a build make
ensure_built() delete the tree and configure it again, so the copy's own
sources are what gets built."""
import json
import os
import shutil
import subprocess
import time

from pclib import build

PRESETS = """{
  "version": 6,
  "configurePresets": [{"name": "default", "generator": "Ninja", "binaryDir": "${sourceDir}/build/${presetName}",
                        "cacheVariables": {"CMAKE_C_COMPILER": "clang-14"}}],
  "buildPresets": [{"name": "default", "configurePreset": "default"}]
}
"""
CMAKELISTS = """cmake_minimum_required(VERSION 3.25)
project(tiny C)
add_subdirectory(app)
"""
APP_CMAKE = "add_executable(hello src/hello.c)\n"


def project(d, word):
    os.makedirs(os.path.join(d, "app", "src"), exist_ok=True)
    with open(os.path.join(d, "CMakePresets.json"), "w") as f:
        f.write(PRESETS)
    with open(os.path.join(d, "CMakeLists.txt"), "w") as f:
        f.write(CMAKELISTS)
    with open(os.path.join(d, "app", "CMakeLists.txt"), "w") as f:
        f.write(APP_CMAKE)
    set_word(d, word)


def set_word(d, word):
    with open(os.path.join(d, "app", "src", "hello.c"), "w") as f:
        f.write('#include <stdio.h>\nint main(void) { puts("%s"); return 0; }\n' % word)


def hello(d):
    return subprocess.run([os.path.join(d, "build", "default", "app", "hello")], stdout=subprocess.PIPE,
                          text=True, check=True).stdout.strip()


def test_copied_tree_builds_its_own_sources(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    project(a, "original")
    build.ensure_built("default", quiet=True, root=a)
    assert hello(a) == "original"
    shutil.copytree(a, b, symlinks=True)     # cp -r of a built checkout
    set_word(b, "patched")                   # patch the copy
    assert "not " + b in build.foreign_cache(os.path.join(b, "build", "default"), b)
    build.ensure_built("default", quiet=True, root=b)
    assert hello(b) == "patched"
    assert hello(a) == "original"             # the original tree was left alone
    assert build.foreign_cache(os.path.join(b, "build", "default"), b) is None


def test_source_newer_than_its_object_after_a_build_reconfigures(tmp_path, monkeypatch):
    a = str(tmp_path / "a")
    project(a, "one")
    bdir = build.ensure_built("default", quiet=True, root=a)
    set_word(a, "two")
    past = time.time() - 10
    src = os.path.join(a, "app", "src", "hello.c")
    obj = os.path.join(bdir, "app", "CMakeFiles", "hello.dir", "src", "hello.c.o")
    os.utime(obj, (past - 20, past - 20))
    os.utime(src, (past, past))
    assert build.stale_objects(bdir, a) == [(src, obj)]
    # The first build does not see the change (as a build tree whose rules
    # name other files would not); ensure_built must notice and start over.
    real, calls = build.run, []

    def blind_first_build(cmd, **kw):
        calls.append(cmd)
        if cmd[:2] == ["cmake", "--build"] and sum(c[:2] == ["cmake", "--build"] for c in calls) == 1:
            return None
        return real(cmd, **kw)
    monkeypatch.setattr(build, "run", blind_first_build)
    build.ensure_built("default", quiet=True, root=a)
    assert hello(a) == "two"
    assert build.stale_objects(bdir, a) == []
    assert ["cmake", "--preset", "default"] in calls


def test_targets_a_build_preset_leaves_out_are_not_stale(tmp_path):
    """A build preset with a target list leaves other targets unbuilt: their
    old objects must not make ensure_built() start over."""
    a = str(tmp_path / "a")
    project(a, "one")
    with open(os.path.join(a, "app", "CMakeLists.txt"), "a") as f:
        f.write("add_executable(other src/other.c)\n")
    with open(os.path.join(a, "app", "src", "other.c"), "w") as f:
        f.write("int main(void) { return 0; }\n")
    bdir = build.ensure_built("default", quiet=True, root=a)      # builds both
    presets = json.load(open(os.path.join(a, "CMakePresets.json")))
    presets["buildPresets"][0]["targets"] = ["hello"]
    json.dump(presets, open(os.path.join(a, "CMakePresets.json"), "w"))
    obj = os.path.join(bdir, "app", "CMakeFiles", "other.dir", "src", "other.c.o")
    past = time.time() - 10
    os.utime(obj, (past - 20, past - 20))
    os.utime(os.path.join(a, "app", "src", "other.c"), (past, past))
    marker = os.path.join(bdir, "kept")
    open(marker, "w").close()
    build.ensure_built("default", quiet=True, root=a)
    assert os.path.exists(marker)                                 # the tree was not deleted
