"""cmark-gfm's Markdown to HTML, with the memory of each rendering given back.

cmarkgfm's markdown_to_html_with_extensions frees its parser but neither the document tree nor the
HTML string that cmark allocated: about 33 KB lost for every content file, 160 MB at 50,000 pages.
This calls the same C functions and frees both. cmark_node_free is exported by cmarkgfm's library
but not declared to its cffi interface, so it is reached through ctypes; the HTML string comes from
cmark's default allocator, which is the C library's malloc.
"""

from __future__ import annotations

import ctypes

from cmarkgfm import _cmark

_ffi, _lib = _cmark.ffi, _cmark.lib
_library = ctypes.CDLL(_cmark.__file__)
_library.cmark_node_free.argtypes = [ctypes.c_void_p]
_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]


def markdown_to_html(text: str, options: int, extensions: tuple[str, ...]) -> str:
    """Return `text` as HTML, rendered with cmark `options` and the named syntax extensions."""
    _lib.cmark_gfm_core_extensions_ensure_registered()
    parser = _lib.cmark_parser_new(options)
    try:
        for name in extensions:
            extension = _lib.cmark_find_syntax_extension(name.encode())
            if extension == _ffi.NULL:
                raise ValueError(f"unknown cmark extension {name!r}")
            _lib.cmark_parser_attach_syntax_extension(parser, extension)
        source = text.encode()
        _lib.cmark_parser_feed(parser, source, len(source))
        document = _lib.cmark_parser_finish(parser)
        try:
            html = _lib.cmark_render_html(document, options, _lib.cmark_parser_get_syntax_extensions(parser))
            try:
                return _ffi.string(html).decode()
            finally:
                _libc.free(_address(html))
        finally:
            _library.cmark_node_free(_address(document))
    finally:
        _lib.cmark_parser_free(parser)


def _address(pointer: object) -> int:
    return int(_ffi.cast("uintptr_t", pointer))
