use crate::common;

use common::{assert_close, gpu, Rand};
use pix2seqd::diffusion::{ddim_coefficients, gamma, step_times};
use pix2seqd::ops::bits::{self, cpu, BitSpec, DdimCoefficients};

const PANOPTIC: BitSpec = BitSpec { class_bits: 8, instance_bits: 8, b_scale: 0.1 };

fn random_ids(r: &mut Rand, n: usize, max: u32) -> Vec<u32> {
    (0..n).map(|_| (r.next_u64() % (max as u64 + 1)) as u32).collect()
}

#[test]
fn ids_round_trip_through_analog_bits_exactly() {
    let gpu = gpu();
    let mut r = Rand::new("bits-roundtrip");
    for (spec, shape) in [
        (PANOPTIC, vec![2usize, 37, 29]),
        (BitSpec { class_bits: 3, instance_bits: 5, b_scale: 1.0 }, vec![1, 7, 9]),
        (BitSpec { class_bits: 8, instance_bits: 7, b_scale: 0.5 }, vec![3, 16, 16]),
    ] {
        let n: usize = shape.iter().product();
        let (num_classes, max_instances) = (1u32 << spec.class_bits, 1u32 << spec.instance_bits);
        let cls = random_ids(&mut r, n, num_classes - 1);
        let inst = random_ids(&mut r, n, max_instances - 1);
        let (tc, ti) = (gpu.upload_u32(&shape, &cls).unwrap(), gpu.upload_u32(&shape, &inst).unwrap());
        let mut f = gpu.frame();
        let x = bits::ids_to_bits(&mut f, &tc, &ti, &spec).unwrap();
        let (c2, i2) = bits::bits_to_ids(&mut f, &x, &spec, num_classes, max_instances).unwrap();
        f.submit();
        let mut bits_shape = shape.clone();
        bits_shape.push(spec.n_bits());
        assert_eq!(x.shape(), &bits_shape[..]);
        let want = cpu::ids_to_bits(&cls, &inst, &spec);
        assert_eq!(gpu.read_blocking(&x).unwrap(), want, "ids_to_bits {spec:?}");
        assert_eq!(gpu.read_u32_blocking(&c2).unwrap(), cls, "class round trip {spec:?}");
        assert_eq!(gpu.read_u32_blocking(&i2).unwrap(), inst, "instance round trip {spec:?}");
        assert_eq!(cpu::bits_to_ids(&want, &spec, num_classes, max_instances), (cls, inst));
    }
    // Layout spot check: class 5 = 0b101, instance 2 = 0b10, LSB first, class bits first.
    let spec = BitSpec { class_bits: 3, instance_bits: 2, b_scale: 0.1 };
    assert_eq!(cpu::ids_to_bits(&[5], &[2], &spec), [0.1, -0.1, 0.1, -0.1, 0.1]);
}

#[test]
fn bits_to_ids_thresholds_and_clamps() {
    let gpu = gpu();
    let mut r = Rand::new("bits-to-ids");
    // COCO: 134 classes (+ void), 101 instance ids; noisy analog values of either sign.
    let (n, spec, num_classes, max_instances) = (4099usize, PANOPTIC, 134u32, 101u32);
    let mut x = r.vec(n * spec.n_bits(), -1.0, 1.0);
    x[0] = 0.0; // exactly 0 is "bit off"
    x[1] = f32::MIN_POSITIVE;
    x[2..8].fill(-0.5); // pixel 0's class is then exactly 0b10 (no clamp)
    let tx = gpu.upload(&[n, spec.n_bits()], &x).unwrap();
    let mut f = gpu.frame();
    let (c, i) = bits::bits_to_ids(&mut f, &tx, &spec, num_classes, max_instances).unwrap();
    f.submit();
    let (wc, wi) = cpu::bits_to_ids(&x, &spec, num_classes, max_instances);
    assert!(
        wc.iter().any(|&v| v == num_classes - 1) && wi.iter().any(|&v| v == max_instances - 1),
        "clamp not exercised"
    );
    assert_eq!(wc[0], 2);
    assert_eq!(gpu.read_u32_blocking(&c).unwrap(), wc);
    assert_eq!(gpu.read_u32_blocking(&i).unwrap(), wi);
}

#[test]
fn expected_bits_match_cpu() {
    let gpu = gpu();
    let mut r = Rand::new("expected-bits");
    for (spec, shape, spread) in [
        (PANOPTIC, vec![2usize, 13, 11], 8.0f32),
        (PANOPTIC, vec![1, 32, 32], 40.0), // peaked softmax: large logits must not overflow
        (BitSpec { class_bits: 3, instance_bits: 6, b_scale: 1.0 }, vec![1, 5, 7], 4.0),
        (BitSpec { class_bits: 1, instance_bits: 8, b_scale: 0.1 }, vec![3, 3, 3], 4.0),
    ] {
        let pixels: usize = shape.iter().product();
        let mut lshape = shape.clone();
        lshape.push(spec.n_logits());
        let mut logits = r.vec(pixels * spec.n_logits(), -spread, spread);
        logits[3] = 500.0; // one dominant logit, far beyond exp's f32 range without the max shift
        let tl = gpu.upload(&lshape, &logits).unwrap();
        let mut f = gpu.frame();
        let x = bits::expected_bits(&mut f, &tl, &spec).unwrap();
        f.submit();
        let want = cpu::expected_bits(&logits, &spec);
        if spec.class_bits >= 2 {
            assert_eq!(want[..2], [spec.b_scale, spec.b_scale]); // pixel 0's class is 3 = 0b11 with p ≈ 1
        }
        // Values lie in [-b, b]; sums of 256 exps in a different order: 1e-5·b absolute.
        assert_close(
            &format!("expected bits {spec:?} {shape:?}"),
            &gpu.read_blocking(&x).unwrap(),
            &want,
            0.0,
            1e-5 * spec.b_scale,
        );
    }
}

#[test]
fn expected_bits_fold_past_65535_workgroups() {
    // 32 pixels per workgroup: 2.1M pixels need 65.6k workgroups. Tiny groups (1 + 1 bits, 4
    // logits per pixel) keep the tensor small.
    let gpu = gpu();
    let mut r = Rand::new("expected-fold");
    let spec = BitSpec { class_bits: 1, instance_bits: 1, b_scale: 0.1 };
    let pixels = 65535 * 32 + r.range(1, 10_000);
    let logits = r.vec(pixels * spec.n_logits(), -5.0, 5.0);
    let tl = gpu.upload(&[pixels, spec.n_logits()], &logits).unwrap();
    let mut f = gpu.frame();
    let x = bits::expected_bits(&mut f, &tl, &spec).unwrap();
    f.submit();
    assert_close(
        &format!("expected bits, {pixels} pixels"),
        &gpu.read_blocking(&x).unwrap(),
        &cpu::expected_bits(&logits, &spec),
        0.0,
        1e-5 * spec.b_scale,
    );
}

#[test]
fn ddim_step_matches_cpu_and_the_fused_kernel() {
    let gpu = gpu();
    let mut r = Rand::new("ddim");
    let spec = PANOPTIC;
    let shape = [2usize, 19, 23];
    let pixels: usize = shape.iter().product();
    let nb = spec.n_bits();
    for (t_now, t_next) in step_times(5, 1.0).into_iter().chain([(1.0, 0.95), (0.02, 0.0)]) {
        let k = ddim_coefficients(t_now, t_next);
        let m = r.vec(pixels * nb, -3.0, 3.0);
        let x0 = r.vec(pixels * nb, -0.15, 0.15); // beyond ±b: the clip must act
        let logits = r.vec(pixels * spec.n_logits(), -6.0, 6.0);
        let tm = gpu.upload(&[shape[0], shape[1], shape[2], nb], &m).unwrap();
        let tm2 = gpu.upload(&[shape[0], shape[1], shape[2], nb], &m).unwrap();
        let tm3 = gpu.upload(&[shape[0], shape[1], shape[2], nb], &m).unwrap();
        let tx = gpu.upload(&[shape[0], shape[1], shape[2], nb], &x0).unwrap();
        let tl = gpu.upload(&[shape[0], shape[1], shape[2], spec.n_logits()], &logits).unwrap();
        let mut f = gpu.frame();
        let out = bits::ddim_step(&mut f, &tm, &tx, spec.b_scale, &k).unwrap();
        bits::ddim_step_in_place(&mut f, &tm2, &tx, spec.b_scale, &k).unwrap();
        let fused_x0 = bits::expected_bits_ddim(&mut f, &tl, &tm3, &spec, &k).unwrap();
        f.submit();
        let want = cpu::ddim_step(&m, &x0, spec.b_scale, &k);
        // m' is O(3): one division and three products in f32, GPU division within 2.5 ulp.
        let name = format!("ddim t {t_now:.3} -> {t_next:.3}");
        assert_close(&name, &gpu.read_blocking(&out).unwrap(), &want, 1e-5, 1e-6);
        assert_close(&format!("{name} in place"), &gpu.read_blocking(&tm2).unwrap(), &want, 1e-5, 1e-6);
        let want_x0: Vec<f32> =
            cpu::expected_bits(&logits, &spec).iter().map(|v| v.clamp(-spec.b_scale, spec.b_scale)).collect();
        let got_x0 = gpu.read_blocking(&fused_x0).unwrap();
        assert_close(&format!("{name} fused x0"), &got_x0, &want_x0, 0.0, 1e-5 * spec.b_scale);
        // The fused state update from the GPU's own x̂0 (so the comparison isolates the step).
        assert_close(
            &format!("{name} fused m"),
            &gpu.read_blocking(&tm3).unwrap(),
            &cpu::ddim_step(&m, &got_x0, spec.b_scale, &k),
            1e-5,
            1e-6,
        );
    }
}

#[test]
fn schedule_and_step_times() {
    // γ(0) ≈ 1 − 1e-7 (about 1 − 9.9e-8), γ(1) ≈ 6.2e-9, monotone decreasing.
    assert!((1.0 - gamma(0.0) - 9.87e-8).abs() < 1e-9, "{}", 1.0 - gamma(0.0));
    assert!((gamma(1.0) - 6.17e-9).abs() < 1e-10, "{}", gamma(1.0));
    let want_half = ((0.5002f64 / 1.00025) * std::f64::consts::FRAC_PI_2).cos().powi(2);
    assert_eq!(gamma(0.5), want_half);
    assert!((0..100).all(|i| gamma(i as f64 / 100.0) > gamma((i + 1) as f64 / 100.0)));

    // td = 0: plain uniform steps.
    let s = step_times(4, 0.0);
    assert_eq!(s, [(1.0, 0.75), (0.75, 0.5), (0.5, 0.25), (0.25, 0.0)]);
    // The eval sweep: 20 steps, td ∈ {1, 2}: t_now = 1 − i/20, the last td + 1 steps go to 0.
    for td in [1.0, 2.0] {
        let s = step_times(20, td);
        assert_eq!(s.len(), 20);
        for (i, &(now, next)) in s.iter().enumerate() {
            assert_eq!(now, 1.0 - i as f64 / 20.0);
            let want = (1.0 - (i as f64 + 1.0 + td) / 20.0).max(0.0);
            assert_eq!(next, want);
        }
        let zeros = s.iter().filter(|(_, next)| *next == 0.0).count();
        assert_eq!(zeros, td as usize + 1, "td {td}");
        assert!(s[..20 - zeros].iter().all(|(_, next)| *next > 0.0));
    }
    assert_eq!(step_times(20, 1.0)[0], (1.0, 0.9));
    // Non-integer td: ⌊td⌋ + 1 steps reach 0 (t_next = max(1 − (i + 2.5)/10, 0) is 0 for i ≥ 7.5).
    let s = step_times(10, 1.5);
    assert_eq!(s.iter().filter(|(_, next)| *next == 0.0).count(), 2);
    assert!((s[7].1 - 0.05).abs() < 1e-12);
    // td ≥ steps: every step jumps to 0.
    assert!(step_times(3, 5.0).iter().all(|(_, next)| *next == 0.0));
}

#[test]
fn wrong_shapes_are_errors_naming_the_op() {
    let gpu = gpu();
    let mut f = gpu.frame();
    let logits = gpu.upload(&[1, 2, 100], &vec![0.0; 200]).unwrap();
    let err = bits::expected_bits(&mut f, &logits, &PANOPTIC).unwrap_err().to_string();
    assert!(err.starts_with("expected_bits:"), "{err}");
    let wide = BitSpec { class_bits: 9, instance_bits: 8, b_scale: 0.1 };
    let err = bits::expected_bits(&mut f, &logits, &wide).unwrap_err().to_string();
    assert!(err.starts_with("expected_bits:"), "{err}");
    let m = gpu.upload(&[1, 1, 16], &[0.0; 16]).unwrap();
    let err = bits::ddim_step(&mut f, &m, &m, 0.1, &DdimCoefficients::new(1.0, 0.5)).unwrap_err().to_string();
    assert!(err.starts_with("ddim_step:"), "{err}");
}
