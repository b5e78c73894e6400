"""A generator's scores (FID, KID, IS, precision/recall, class fidelity) and their history in
`<workdir>/metrics.json`, for the evaluate command, FID during training and the web gallery."""
import dataclasses
import json
import os
from typing import Dict, List, Optional, Sequence

import ml_collections
import numpy as np

from gan_jax import files
from gan_jax import generation
from gan_jax import metrics
from gan_jax.train import GANState

FILENAME = "metrics.json"


@dataclasses.dataclass(frozen=True)
class References:
  """What a run's generated images are scored against: the split's Inception statistics; for
  conditional runs the linear probe; with VGG-16 weights the network and the split's VGG features."""
  statistics: metrics.ReferenceStatistics
  probe: Optional[metrics.LinearProbe] = None
  vgg: Optional[metrics.VGGFeatures] = None
  vgg_features: Optional[np.ndarray] = None


def run_references(config: ml_collections.ConfigDict, num_classes: int,
                   inception: metrics.InceptionFeatures,
                   metric_names: Sequence[str] = metrics.ALL_METRICS,
                   batch_size: int = metrics.inception.DEFAULT_BATCH_SIZE,
                   reference_size: Optional[int] = None,
                   vgg: Optional[metrics.VGGFeatures] = None) -> References:
  """The references of a run's training split (or its seeded subset of `reference_size` images), each
  computed once and cached (gan_jax.metrics): only those that `metric_names` need."""
  where = dict(data_dir=config.data_dir or None, reference_size=reference_size,
               image_size=config.image_size)
  conditional = num_classes > 1 and bool({"probe", "intra_fid"} & set(metric_names))
  statistics = metrics.reference_statistics(config.dataset, config.split, inception=inception,
                                            batch_size=batch_size, need_labels=conditional, **where)
  probe = None
  if conditional and "probe" in metric_names:
    probe = metrics.reference_probe(config.dataset, config.split, statistics, inception=inception,
                                    batch_size=batch_size, **where)
  vgg_features = None
  if vgg is not None and "pr" in metric_names:
    vgg_features = metrics.reference_vgg_features(config.dataset, config.split, vgg, **where)
  return References(statistics, probe, vgg if vgg_features is not None else None, vgg_features)


def score_generator(state: GANState, workdir: str, num_samples: int,
                    reference, inception: metrics.InceptionFeatures,
                    metric_names: Sequence[str] = metrics.ALL_METRICS,
                    batch_size: int = metrics.inception.DEFAULT_BATCH_SIZE) -> Dict[str, float]:
  """Scores `num_samples` images of the generator and records them in `<workdir>/metrics.json`.

  `reference`: References, or only the split's ReferenceStatistics (FID, KID, IS, precision/recall on
  Inception features). A conditional generator's images are drawn for every class in turn
  (generation.sample_labels), and those classes go to the class metrics.
  """
  if isinstance(reference, metrics.ReferenceStatistics):
    reference = References(reference)
  labels = (generation.sample_labels(np.arange(num_samples), state.num_classes)
            if state.num_classes else None)
  scores = metrics.evaluate_images(generation.generated_images(state, num_samples, batch_size=batch_size),
                                   reference.statistics, inception, metrics=metric_names,
                                   batch_size=batch_size, vgg=reference.vgg,
                                   vgg_reference=reference.vgg_features, labels=labels,
                                   probe=reference.probe)
  result = {"step": int(state.step), "num_samples": num_samples, "protocol": metrics.PROTOCOL,
            "reference": reference.statistics.description, **scores}
  if "precision" in scores:
    result["precision_protocol"] = reference.vgg.protocol
  if "probe_accuracy" in scores:
    result["probe_protocol"] = metrics.classes.PROBE_PROTOCOL
  record_metrics(workdir, result)
  return result


def record_metrics(workdir: str, result: Dict) -> None:
  """metrics.json maps each evaluated step to its scores; earlier evaluations are kept."""
  path = os.path.join(workdir, FILENAME)
  history = {}
  if os.path.exists(path):
    with open(path) as f:
      history = json.load(f)
  history[str(result["step"])] = result
  files.write_text(path, json.dumps(history, indent=2, sort_keys=True))


def metrics_history(workdir: str) -> List[Dict]:
  """The recorded evaluations in step order; none for a run never evaluated."""
  path = os.path.join(workdir, FILENAME)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return sorted(json.load(f).values(), key=lambda result: result["step"])
