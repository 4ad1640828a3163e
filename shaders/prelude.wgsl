// wgflow's WGSL prelude, prepended to every elementwise kernel.
//
// Index convention. A dispatch of N invocations with workgroup size W runs ceil(N / W) workgroups;
// more than 65,535 of them are folded into (x, y). Every kernel computes its linear index with
// `linear_index` and returns when the index is >= the element count, which the host writes as the
// first u32 of the kernel's uniform (`struct Params { count: u32, ... }` at binding 0).
//
// Float helpers. They follow TensorFlow's CPU results for NaN, infinities and zeros rather than
// WGSL's builtins, whose results there are undefined. NaN is tested through the bits, since a
// compiler may fold `x != x` to false.

fn linear_index(gid: vec3<u32>, num_workgroups: vec3<u32>, workgroup_size: u32) -> u32 {
    return gid.x + gid.y * (num_workgroups.x * workgroup_size);
}

// A function call, so that naga does not fold NaN or infinity into a constant (it rejects those).
fn f32_from_bits(bits: u32) -> f32 {
    return bitcast<f32>(bits);
}

fn nan_f32() -> f32 {
    return f32_from_bits(0x7fc00000u);
}

fn inf_f32() -> f32 {
    return f32_from_bits(0x7f800000u);
}

fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn is_inf(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u;
}

// The magnitude of `mag` with the sign bit of `sgn`.
fn copysign_f32(mag: f32, sgn: f32) -> f32 {
    return f32_from_bits((bitcast<u32>(mag) & 0x7fffffffu) | (bitcast<u32>(sgn) & 0x80000000u));
}

// tf.maximum / tf.minimum on floats: NaN if either input is NaN.
fn max_tf(a: f32, b: f32) -> f32 {
    if (is_nan(a) || is_nan(b)) {
        return nan_f32();
    }
    return select(b, a, a >= b);
}

fn min_tf(a: f32, b: f32) -> f32 {
    if (is_nan(a) || is_nan(b)) {
        return nan_f32();
    }
    return select(b, a, a <= b);
}

// Whether `y` is an odd integer (every float of magnitude 2^24 or more is even).
fn is_odd_integer(y: f32) -> bool {
    let ay = abs(y);
    if (!(ay < 16777216.0) || floor(ay) != ay) {
        return false;
    }
    return (u32(ay) & 1u) == 1u;
}

// x^n by squaring, for small integer exponents (exact for squares, like the CPU).
fn powi_f32(x: f32, n: u32) -> f32 {
    var result = 1.0;
    var base = x;
    var e = n;
    loop {
        if ((e & 1u) == 1u) {
            result = result * base;
        }
        e = e >> 1u;
        if (e == 0u) {
            break;
        }
        base = base * base;
    }
    return result;
}

// C's pow, as TF computes it: pow(x, 0) = 1 and pow(1, y) = 1 even for NaN; pow(0, -1) = inf;
// pow(-2, 0.5) = NaN; pow(-2, 2) = 4; pow(-2, 3) = -8.
fn pow_tf(x: f32, y: f32) -> f32 {
    if (y == 0.0 || x == 1.0) {
        return 1.0;
    }
    if (is_nan(x) || is_nan(y)) {
        return nan_f32();
    }
    let ax = abs(x);
    if (is_inf(y)) {
        if (ax == 1.0) {
            return 1.0;
        }
        if ((ax > 1.0) == (y > 0.0)) {
            return inf_f32();
        }
        return 0.0;
    }
    let odd = is_odd_integer(y);
    if (x == 0.0) {
        if (y < 0.0) {
            return select(inf_f32(), copysign_f32(inf_f32(), x), odd);
        }
        return select(0.0, x, odd);
    }
    if (is_inf(x)) {
        if (y < 0.0) {
            return select(0.0, copysign_f32(0.0, x), odd);
        }
        return select(inf_f32(), x, odd);
    }
    let integral = floor(y) == y;
    if (x < 0.0 && !integral) {
        return nan_f32();
    }
    var r: f32;
    if (integral && abs(y) <= 64.0) {
        r = powi_f32(ax, u32(abs(y)));
        if (y < 0.0) {
            r = 1.0 / r;
        }
    } else {
        r = pow(ax, y);
    }
    return select(r, -r, x < 0.0 && odd);
}

// log(0) = -inf, log(x < 0) = NaN, log(inf) = inf.
fn log_tf(x: f32) -> f32 {
    if (is_nan(x) || x < 0.0) {
        return nan_f32();
    }
    if (x == 0.0) {
        return -inf_f32();
    }
    if (is_inf(x)) {
        return x;
    }
    return log(x);
}

// sqrt(x < 0) = NaN, sqrt(inf) = inf.
fn sqrt_tf(x: f32) -> f32 {
    if (is_nan(x) || x < 0.0) {
        return nan_f32();
    }
    if (is_inf(x)) {
        return x;
    }
    return sqrt(x);
}

// tanh as TF's CPU kernel computes it (Eigen's rational 13/6 approximation): odd, exact for tiny
// inputs, no overflow for large ones, exactly +-1 from |x| >= 9 and never beyond +-1.
fn tanh_tf(x: f32) -> f32 {
    if (is_nan(x)) {
        return x;
    }
    let ax = abs(x);
    if (ax < 0.0004) {
        return x;
    }
    if (ax >= 9.0) {
        return copysign_f32(1.0, x);
    }
    let c = clamp(x, -7.90531110763549805, 7.90531110763549805);
    let c2 = c * c;
    var p = c2 * -2.76076847742355e-16 + 2.00018790482477e-13;
    p = p * c2 + -8.60467152213735e-11;
    p = p * c2 + 5.12229709037114e-08;
    p = p * c2 + 1.48572235717979e-05;
    p = p * c2 + 6.37261928875436e-04;
    p = p * c2 + 4.89352455891786e-03;
    p = p * c;
    var q = c2 * 1.19825839466702e-06 + 1.18534705686654e-04;
    q = q * c2 + 2.26843463243900e-03;
    q = q * c2 + 4.89352518554385e-03;
    return clamp(p / q, -1.0, 1.0);
}

// exp with TF-like accuracy over the whole float range (the builtin's error grows with |x| on
// some drivers): x = k*ln2 + r with ln2 split in two (Cody-Waite), a degree-7 polynomial for
// exp(r), and the power of two applied in two halves so 2^k never overflows on the way.
fn exp_tf(x: f32) -> f32 {
    if (is_nan(x)) {
        return x;
    }
    if (x > 88.72284) {
        return inf_f32();
    }
    if (x < -103.97208) {
        return 0.0;
    }
    let k = round(x * 1.44269504);
    let r = (x - k * 0.693145752) - k * 1.42860677e-6;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (0.166666672 + r * (0.0416666679 + r * (0.00833333377
        + r * (0.00138888892 + r * 0.000198412701))))));
    let ki = i32(k);
    let half = ki / 2;
    return ldexp(ldexp(p, half), ki - half);
}
