"""The C header is the contract: it compiles as C, cffi reads it, Python declares exactly it,
C and cffi agree on every struct layout, and every build reports the same ABI version."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import cffi
import pytest
from native_support import HEADER

from mlx_audio_coreml import native
from mlx_audio_coreml.errors import ABIVersionMismatch
from mlx_audio_coreml.native import abi


def header_block() -> str:
    text = HEADER.read_text()
    block = text.split("/* macb:cdef-begin")[1].split("/* macb:cdef-end */")[0]
    return block.split("*/", 1)[1]  # drop the rest of the marker comment


def normalized(declarations: str) -> str:
    without_comments = re.sub(r"/\*.*?\*/", " ", declarations, flags=re.S)
    return re.sub(r"\s+", " ", without_comments).strip()


def compile_header(compiler: str, source: str, suffix: str, tmp_path: Path, *flags: str) -> None:
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} not installed")
    main = tmp_path / f"include_header{suffix}"
    main.write_text(source)
    result = subprocess.run(
        [compiler, "-fsyntax-only", *flags, f"-I{HEADER.parent}", str(main)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_header_compiles_as_strict_c99(tmp_path: Path) -> None:
    compile_header(
        "gcc",
        '#include "macb.h"\nint main(void) { return MACB_OK; }\n',
        ".c",
        tmp_path,
        "-std=c99",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
    )


def test_header_compiles_as_cxx(tmp_path: Path) -> None:
    compile_header(
        "g++",
        '#include "macb.h"\nint main() { return macb_abi_version() == 0; }\n',
        ".cpp",
        tmp_path,
        "-Wall",
        "-Wextra",
        "-Werror",
    )


def test_cffi_parses_the_header_block() -> None:
    ffi = cffi.FFI()
    ffi.cdef(header_block())
    assert ffi.sizeof("macb_tensor") > 0


def test_python_declarations_are_the_header_block() -> None:
    assert normalized(abi.CDEF) == normalized(header_block())


def test_python_abi_version_is_the_header_version() -> None:
    assert abi.CONSTANTS["MACB_ABI_VERSION"] == abi.ABI_VERSION


def test_built_libraries_report_the_header_abi_version(real_library, standin) -> None:
    assert real_library.raw.macb_abi_version() == abi.ABI_VERSION
    assert standin.raw.macb_abi_version() == abi.ABI_VERSION


STRUCT_FIELDS = {
    "macb_runtime_facts": ["coreml_available", "running_in_vm", "os_version", "os_name", "backend", "note"],
    "macb_load_params": ["model_path", "compiled_path", "compute_units", "flags", "on_stage", "user_data"],
    "macb_job_state": ["stage", "adopted", "used_compiled_cache", "elapsed_s"],
    "macb_feature": ["name", "dtype", "rank", "shape"],
    "macb_tensor": ["name", "dtype", "rank", "shape", "strides", "data", "byte_size", "flags"],
    "macb_tensor_fault": ["role", "index", "name", "expected_dtype", "expected_rank", "expected_shape", "needed_bytes"],
    "macb_model_info": ["compute_units", "uses_output_backings", "predictions"],
}


def test_c_compiler_and_cffi_agree_on_struct_layouts(tmp_path: Path) -> None:
    """cffi computes layouts itself in ABI mode; Swift imports the header through Clang: both must
    match what a C compiler lays out."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    lines = ["#include <stdio.h>", "#include <stddef.h>", '#include "macb.h"', "int main(void) {"]
    for struct, fields in STRUCT_FIELDS.items():
        lines.append(f'  printf("{struct} %zu\\n", sizeof({struct}));')
        lines += [f'  printf("{struct}.{f} %zu\\n", offsetof({struct}, {f}));' for f in fields]
    lines.append("  return 0; }")
    source, program = tmp_path / "layout.c", tmp_path / "layout"
    source.write_text("\n".join(lines))
    subprocess.run(["gcc", "-std=c99", f"-I{HEADER.parent}", str(source), "-o", str(program)], check=True)
    from_c = dict(
        line.split()
        for line in subprocess.run([str(program)], capture_output=True, text=True, check=True).stdout.splitlines()
    )
    ffi = cffi.FFI()
    ffi.cdef(abi.CDEF)
    for struct, fields in STRUCT_FIELDS.items():
        assert int(from_c[struct]) == ffi.sizeof(struct), struct
        for field in fields:
            assert int(from_c[f"{struct}.{field}"]) == ffi.offsetof(struct, field), f"{struct}.{field}"


def test_a_library_speaking_another_abi_version_is_refused(tmp_path: Path) -> None:
    """A stale build on disk must not be called with this Python code's struct layouts."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    source, library = tmp_path / "old.c", tmp_path / "libmacb-old.so"
    source.write_text(
        "unsigned int macb_abi_version(void) { return 999; }\n"
        'const char *macb_build_info(void) { return "an old build"; }\n'
    )
    subprocess.run(["gcc", "-shared", "-fPIC", str(source), "-o", str(library)], check=True)
    with pytest.raises(ABIVersionMismatch) as caught:
        native.library(library)
    assert (caught.value.expected, caught.value.got) == (abi.ABI_VERSION, 999)
    assert native.library_status(library).state == "abi mismatch"
