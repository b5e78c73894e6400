"""A generator's scores (FID, KID, IS, precision/recall) and their history in `<workdir>/metrics.json`,
for the evaluate command, FID during training and the web gallery."""
import json
import os
from typing import Dict, List, Sequence

from gan_jax import files
from gan_jax import generation
from gan_jax import metrics
from gan_jax.train import GANState

FILENAME = "metrics.json"


def score_generator(state: GANState, workdir: str, num_samples: int,
                    reference: metrics.ReferenceStatistics, inception: metrics.InceptionFeatures,
                    metric_names: Sequence[str] = metrics.ALL_METRICS,
                    batch_size: int = metrics.inception.DEFAULT_BATCH_SIZE) -> Dict[str, float]:
  """Scores `num_samples` images of the generator and records them in `<workdir>/metrics.json`."""
  scores = metrics.evaluate_images(generation.generated_images(state, num_samples, batch_size=batch_size),
                                   reference, inception, metrics=metric_names, batch_size=batch_size)
  result = {"step": int(state.step), "num_samples": num_samples, "protocol": metrics.PROTOCOL,
            "reference": reference.description, **scores}
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
