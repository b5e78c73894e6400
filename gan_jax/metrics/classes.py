"""Class fidelity of conditional generators from the Inception pool3 features that FID computes anyway.

Inception linear-probe accuracy (`probe_accuracy`): a multinomial logistic regression is fitted once per
reference split on the pool3 features of its real images and their labels; generated images of class c
score by the fraction of them it classifies as c. Its accuracy on the real test split
(`probe_accuracy_real_test`, where the dataset has one) is what real images reach: the ceiling to read
the generator's accuracy against. Protocol (PROBE_PROTOCOL, part of the cache file name):
  * features standardised with the training features' mean and standard deviation (1 where constant),
  * softmax regression with a bias per class, loss = mean cross-entropy + L2 / 2 * |W|^2 (the bias
    not penalised), L2 = 1e-4,
  * fitted full-batch by L-BFGS (scipy's L-BFGS-B) from zeros, at most 500 iterations (the loss and its
    gradient in float32).
A probe, not the generator's own classifier: it reads only features of real images and knows nothing of
the generator (unlike a classifier trained with it, it cannot be fooled by its artefacts more than
Inception is).

Intra-FID (`intra_fid`, Miyato & Koyama 2018, cGANs with projection discriminator): the mean over classes
of the FID between the generated and the real images of each class. It is reported only when every
class has at least INTRA_FID_MIN_PER_CLASS images on either side. FID is biased upwards for few samples
(the covariance of 100 samples in 2048 dimensions has rank 99), and more so per class than overall, so
intra-FIDs compare only with intra-FIDs of the same sample counts.
"""
import dataclasses
import os
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import files
from gan_jax.errors import UserError
from gan_jax.metrics import scores

L2 = 1e-4
MAX_ITERATIONS = 500
PROBE_PROTOCOL = f"probe-logreg-std-l2_{L2:g}-lbfgs{MAX_ITERATIONS}"
INTRA_FID_MIN_PER_CLASS = 100


@dataclasses.dataclass(frozen=True)
class LinearProbe:
  """A fitted softmax regression on standardised features: class = argmax(((x - mean) / scale) W + b).

  train_accuracy is on the features it was fitted on; test_accuracy on the real test split, NaN where
  there is none.
  """
  mean: np.ndarray
  scale: np.ndarray
  weights: np.ndarray
  bias: np.ndarray
  train_accuracy: float
  test_accuracy: float
  description: str
  dataset_size: int = 0  # of the split whose images it was fitted on (a grown split is fitted again)

  @property
  def num_classes(self) -> int:
    return len(self.bias)

  def logits(self, features: np.ndarray) -> np.ndarray:
    return ((np.asarray(features, np.float64) - self.mean) / self.scale) @ self.weights + self.bias

  def predict(self, features: np.ndarray) -> np.ndarray:
    return np.argmax(self.logits(features), axis=1)

  def accuracy(self, features: np.ndarray, labels: np.ndarray) -> float:
    """The fraction of `features` classified as their `labels`."""
    return float(np.mean(self.predict(features) == np.asarray(labels)))

  def with_test_accuracy(self, features: np.ndarray, labels: np.ndarray, split: str) -> "LinearProbe":
    return dataclasses.replace(self, test_accuracy=self.accuracy(features, labels),
                               description=f"{self.description}; tested on {split}")

  def save(self, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with files.atomic_path(path) as temporary:
      np.savez(temporary, mean=self.mean, scale=self.scale, weights=self.weights, bias=self.bias,
               train_accuracy=self.train_accuracy, test_accuracy=self.test_accuracy,
               description=np.array(self.description), dataset_size=self.dataset_size,
               protocol=np.array(PROBE_PROTOCOL))

  @classmethod
  def load(cls, path: str) -> "LinearProbe":
    with np.load(path) as f:
      if str(f["protocol"]) != PROBE_PROTOCOL:
        raise UserError(f"{path} holds a probe of protocol {f['protocol']}, not {PROBE_PROTOCOL}; delete it")
      return cls(mean=f["mean"], scale=f["scale"], weights=f["weights"], bias=f["bias"],
                 train_accuracy=float(f["train_accuracy"]), test_accuracy=float(f["test_accuracy"]),
                 description=str(f["description"]), dataset_size=int(f["dataset_size"]))


def fit_probe(features: np.ndarray, labels: np.ndarray, num_classes: int, l2: float = L2,
              max_iterations: int = MAX_ITERATIONS, description: str = "") -> LinearProbe:
  """Fits the probe of the module docstring's protocol to (N, D) features and their int labels."""
  features = np.asarray(features, np.float64)
  labels = np.asarray(labels, np.int64)
  if len(features) != len(labels) or len(features) < 2:
    raise ValueError(f"a probe needs features and labels of the same length >= 2, got {len(features)} "
                     f"and {len(labels)}")
  mean = features.mean(axis=0)
  scale = features.std(axis=0)
  scale = np.where(scale > 0, scale, 1.0)
  n, dim = features.shape
  # The products with the (N, D) features, nearly all of the work, run in JAX (float32 at HIGHEST
  # precision, on the accelerator where there is one): 50,000 x 2,048 features cost ~2 s an iteration in
  # float64 numpy on 2 CPU cores. L-BFGS itself works on the few parameters in float64.
  x = jnp.asarray((features - mean) / scale, jnp.float32)
  one_hot = jax.nn.one_hot(jnp.asarray(labels), num_classes, dtype=jnp.float32)

  @jax.jit
  def objective(weights, bias):
    logits = jnp.matmul(x, weights, precision=jax.lax.Precision.HIGHEST) + bias
    cross_entropy = -jnp.sum(one_hot * jax.nn.log_softmax(logits, axis=1)) / n
    return cross_entropy + l2 / 2 * jnp.sum(weights * weights)

  loss_and_gradients = jax.jit(jax.value_and_grad(objective, argnums=(0, 1)))

  def loss_and_gradient(flat):
    weights = jnp.asarray(flat[:dim * num_classes].reshape(dim, num_classes), jnp.float32)
    loss, (d_weights, d_bias) = loss_and_gradients(weights, jnp.asarray(flat[dim * num_classes:],
                                                                        jnp.float32))
    return float(loss), np.concatenate([np.asarray(d_weights, np.float64).ravel(),
                                        np.asarray(d_bias, np.float64)])

  # Imported here: only a fit needs it, and importing it adds ~0.6 s to every command's
  # start on 2 cores (`python -X importtime`).
  import scipy.optimize  # pylint: disable=g-import-not-at-top
  result = scipy.optimize.minimize(loss_and_gradient, np.zeros(dim * num_classes + num_classes),
                                   jac=True, method="L-BFGS-B", options={"maxiter": max_iterations})
  weights = result.x[:dim * num_classes].reshape(dim, num_classes)
  probe = LinearProbe(mean=mean, scale=scale, weights=weights, bias=result.x[dim * num_classes:],
                      train_accuracy=float("nan"), test_accuracy=float("nan"),
                      description=description or PROBE_PROTOCOL)
  return dataclasses.replace(probe, train_accuracy=probe.accuracy(features, labels))


def probe_accuracy(probe: LinearProbe, features: np.ndarray, labels: np.ndarray) -> float:
  """The fraction of generated images (features, the classes they were generated for) that the probe
  classifies as their class."""
  return probe.accuracy(features, labels)


def intra_fid(features: np.ndarray, labels: np.ndarray, real_features: np.ndarray,
              real_labels: np.ndarray, num_classes: int,
              min_per_class: int = INTRA_FID_MIN_PER_CLASS) -> Tuple[Optional[float], str]:
  """(mean over classes of FID(generated of class c, real of class c), why None) with None where a class
  has fewer than min_per_class images on either side."""
  labels, real_labels = np.asarray(labels), np.asarray(real_labels)
  generated_counts = np.bincount(labels, minlength=num_classes)
  real_counts = np.bincount(real_labels, minlength=num_classes)
  fewest = min(generated_counts.min(), real_counts.min())
  if fewest < min_per_class:
    side = "generated" if generated_counts.min() <= real_counts.min() else "real"
    return None, (f"intra-FID needs {min_per_class} images of every class on either side; "
                  f"class {int(np.argmin(generated_counts if side == 'generated' else real_counts))} has "
                  f"{fewest} {side} images")
  per_class = [scores.fid_of_samples(features[labels == c], real_features[real_labels == c])
               for c in range(num_classes)]
  return float(np.mean(per_class)), ""
