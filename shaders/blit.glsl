#version 330 core
// Scales an image over the viewport with one full-screen triangle: the reduced-resolution scene
// of adaptive quality drawn back at full size.

#if defined VERTEX_SHADER
out vec2 v_uv;

void main() {
    vec2 corner = vec2((gl_VertexID << 1) & 2, gl_VertexID & 2);
    v_uv = corner;
    gl_Position = vec4(corner * 2.0 - 1.0, 0.0, 1.0);
}
#endif

#if defined FRAGMENT_SHADER
uniform sampler2D u_image;
in vec2 v_uv;
out vec4 f_color;

void main() {
    f_color = texture(u_image, v_uv);
}
#endif
