use crate::common;

use common::{assert_close, gpu, Rand};
use pix2seqd::ops::{elementwise, Activation};

const ACTS: [Activation; 5] =
    [Activation::None, Activation::Relu, Activation::Relu6, Activation::Silu, Activation::Gelu];

#[test]
fn add_with_scale_and_every_activation() {
    let gpu = gpu();
    let mut r = Rand::new("add");
    for act in ACTS {
        let n = r.range(1, 5000);
        let (a, b) = (r.vec(n, -8.0, 8.0), r.vec(n, -8.0, 8.0));
        let (ta, tb) = (gpu.upload(&[n], &a).unwrap(), gpu.upload(&[n], &b).unwrap());
        let mut f = gpu.frame();
        let y = elementwise::add(&mut f, &ta, &tb, std::f32::consts::FRAC_1_SQRT_2, act).unwrap();
        f.submit();
        let want = elementwise::cpu::add(&a, &b, std::f32::consts::FRAC_1_SQRT_2, act);
        assert_close(&format!("add {act:?} n={n}"), &gpu.read_blocking(&y).unwrap(), &want, 1e-5, 1e-6);
    }
}

#[test]
fn affine_and_film() {
    let gpu = gpu();
    let mut r = Rand::new("film");
    for act in ACTS {
        let (n, h, w, c) = (r.range(1, 3), r.range(1, 9), r.range(1, 9), r.range(1, 67));
        let x = r.vec(n * h * w * c, -4.0, 4.0);
        let ss = r.vec(n * 2 * c, -1.0, 1.0);
        let tx = gpu.upload(&[n, h, w, c], &x).unwrap();
        let tss = gpu.upload(&[n, 2 * c], &ss).unwrap();
        let mut f = gpu.frame();
        let y = elementwise::film(&mut f, &tx, &tss, act).unwrap();
        let z = elementwise::affine(&mut f, &tx, 0.5, -0.25, act).unwrap();
        f.submit();
        assert_close(
            &format!("film {act:?} {n}x{h}x{w}x{c}"),
            &gpu.read_blocking(&y).unwrap(),
            &elementwise::cpu::film(&x, n, c, &ss, act),
            1e-5,
            1e-6,
        );
        assert_close(
            &format!("affine {act:?}"),
            &gpu.read_blocking(&z).unwrap(),
            &elementwise::cpu::affine(&x, 0.5, -0.25, act),
            1e-5,
            1e-6,
        );
    }
}

#[test]
fn more_than_65535_workgroups_fold_into_y() {
    // 256 threads × 65535 groups = 16,776,960; one more group forces a 2-D dispatch.
    let gpu = gpu();
    let n = 256 * 65535 + 1000;
    let a: Vec<f32> = (0..n).map(|i| (i % 1024) as f32).collect();
    let ta = gpu.upload(&[n], &a).unwrap();
    let tb = gpu.upload(&[n], &a).unwrap();
    let mut f = gpu.frame();
    let y = elementwise::add(&mut f, &ta, &tb, 1.0, Activation::None).unwrap();
    f.submit();
    let got = gpu.read_blocking(&y).unwrap();
    let wrong = got.iter().enumerate().filter(|(i, v)| **v != 2.0 * (i % 1024) as f32).count();
    assert_eq!(wrong, 0, "{wrong} of {n} elements wrong; last = {}", got[n - 1]);
}

#[test]
fn shape_mismatch_is_an_error_naming_the_op() {
    let gpu = gpu();
    let a = gpu.upload(&[3], &[1.0, 2.0, 3.0]).unwrap();
    let b = gpu.upload(&[2], &[1.0, 2.0]).unwrap();
    let mut f = gpu.frame();
    let err = elementwise::add(&mut f, &a, &b, 1.0, Activation::None).unwrap_err().to_string();
    assert!(err.starts_with("add:"), "{err}");
}
