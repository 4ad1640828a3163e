//! Input values: a small deterministic generator (splitmix64) per input, seeded from the
//! case's seed and the input's index, drawing from the input's [`Dist`].

use super::case::Dist;
use wgflow::Tensor;

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    fn sign(&mut self) -> f64 {
        if self.next_u64() & 1 == 0 {
            1.0
        } else {
            -1.0
        }
    }
    /// Log-uniform in [1e-3, 1e3].
    fn magnitude(&mut self) -> f64 {
        10f64.powf(self.unit() * 6.0 - 3.0)
    }
}

fn draw(rng: &mut Rng, dist: Dist) -> f32 {
    let v = match dist {
        Dist::Mixed | Dist::Extreme => {
            let r = rng.below(100);
            if r < 10 {
                0.0
            } else if dist == Dist::Extreme && r < 12 {
                rng.sign() * 1e-30
            } else if dist == Dist::Extreme && r < 13 {
                rng.sign() * 1e20
            } else {
                rng.sign() * rng.magnitude()
            }
        }
        Dist::Positive => rng.magnitude(),
        Dist::NonZero => rng.sign() * rng.magnitude(),
        Dist::Small => {
            if rng.below(10) == 0 {
                0.0
            } else {
                rng.unit() * 16.0 - 8.0
            }
        }
        Dist::Ties => rng.below(7) as f64 - 3.0,
    };
    v as f32
}

/// The values of input number `index` of a case.
pub fn input(seed: u64, index: usize, shape: &[usize], dist: Dist) -> Tensor {
    let mut rng = Rng::new(seed ^ (index as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let n: usize = shape.iter().product();
    let data = (0..n).map(|_| draw(&mut rng, dist)).collect();
    Tensor::from_f32(shape, data).expect("an input tensor")
}
