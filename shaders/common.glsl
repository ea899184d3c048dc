// Shared by the box-like programs, which include this file by name: the per-instance data
// (INSTANCE_LAYOUT in engine/render/backend.py), quaternion rotation, lighting, flag styling
// and the colour-map lookup. Not a program on its own.

#if defined VERTEX_SHADER
#if defined PER_DRAW_INSTANCE
// Naive path: one draw per entity, the instance row arrives as a uniform array.
uniform float u_instance[22];
#else
in vec3 i_center;
in vec3 i_size;
in vec4 i_rotation;
in vec4 i_color;
in vec4 i_region;
in vec2 i_range;
in float i_colormap;
in float i_flags;
#endif

struct Instance {
    vec3 center;
    vec3 size;
    vec4 rotation;
    vec4 color;
    vec4 region;
    vec2 range;
    int colormap;
    int flags;
};

Instance load_instance() {
#if defined PER_DRAW_INSTANCE
    float f[22] = u_instance;
    return Instance(vec3(f[0], f[1], f[2]), vec3(f[3], f[4], f[5]), vec4(f[6], f[7], f[8], f[9]),
                    vec4(f[10], f[11], f[12], f[13]), vec4(f[14], f[15], f[16], f[17]),
                    vec2(f[18], f[19]), int(f[20] + 0.5), int(f[21] + 0.5));
#else
    return Instance(i_center, i_size, i_rotation, i_color, i_region, i_range,
                    int(i_colormap + 0.5), int(i_flags + 0.5));
#endif
}

vec3 quat_rotate(vec4 q, vec3 v) {
    vec3 t = 2.0 * cross(q.xyz, v);
    return v + q.w * t + cross(q.xyz, t);
}

// A key light fixed to the camera (up and to the left), normalised so that a face looking
// straight at the camera shows its colour exactly and the other faces are darker by angle.
const vec3 KEY_LIGHT = vec3(-0.35, 0.6, 0.72);
const float AMBIENT = 0.45;
const float DIFFUSE = 0.55;

float face_shade(vec3 view_normal) {
    vec3 l = normalize(KEY_LIGHT);
    float lit = AMBIENT + DIFFUSE * max(dot(view_normal, l), 0.0);
    return min(lit / (AMBIENT + DIFFUSE * l.z), 1.0);
}
#endif

const int FLAG_HIGHLIGHTED = 1;
const int FLAG_DIMMED = 2;

// Background colour of the frame: dimmed things fade towards it, so dimming reads the same
// in the opaque pass (no blending) as in the translucent one.
uniform vec3 u_fade_color;

vec4 style(vec3 rgb, float alpha, int flags) {
    if ((flags & FLAG_HIGHLIGHTED) != 0) {
        rgb = mix(rgb, vec3(1.0), 0.3);
    }
    if ((flags & FLAG_DIMMED) != 0) {
        float luma = dot(rgb, vec3(0.299, 0.587, 0.114));
        rgb = mix(mix(rgb, vec3(luma), 0.85), u_fade_color, 0.55);
        alpha *= 0.4;
    }
    return vec4(rgb, alpha);
}

#if defined FRAGMENT_SHADER
uniform sampler2D u_colormaps;  // RGBA32F, COLORMAP_SIZE x maps; same maths as colormaps.apply

vec3 colormap(float value, vec2 range, int map) {
    if (isnan(value)) {
        return vec3(0.16, 0.16, 0.19);  // colormaps.NAN_RGB: an empty cell (tested to match)
    }
    if (map == COLORMAP_RGB) {  // a packed 24-bit colour (colormaps.pack_rgb): a picture's pixel
        int bits = int(value + 0.5);
        return vec3(float((bits >> 16) & 255), float((bits >> 8) & 255), float(bits & 255)) / 255.0;
    }
    float span = range.y - range.x;
    float t = span != 0.0 ? clamp((value - range.x) / span, 0.0, 1.0) : 0.5;
    float x = t * float(COLORMAP_SIZE - 1);
    int i0 = min(int(floor(x)), COLORMAP_SIZE - 2);
    float f = x - float(i0);
    vec3 a = texelFetch(u_colormaps, ivec2(i0, map), 0).rgb;
    vec3 b = texelFetch(u_colormaps, ivec2(i0 + 1, map), 0).rgb;
    return mix(a, b, f);
}
#endif
