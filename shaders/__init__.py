"""GLSL programs, one file each, split into stages by #if defined VERTEX_SHADER; loaded by name."""
