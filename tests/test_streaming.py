"""Streamed input (gan_jax.data.streaming): epochs, host shards, positions, workers, the choice of path, and
training end to end with exact resume, on small image folders the tests make."""
import csv
import os
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from gan_jax import data
from gan_jax import import_images
from gan_jax.data import streaming
from gan_jax import train
from gan_jax import trainer
from gan_jax.errors import UserError
from conftest import tiny_config, write_image_folder

_BIG = 2**40  # a memory budget every test split fits


@pytest.fixture(scope="module")
def pics64(tmp_path_factory):
  """A prepared dataset of 24 random 64x64 RGB images in 2 classes: (data_dir, name)."""
  root = tmp_path_factory.mktemp("pics64")
  write_image_folder(str(root / "src"), per_class=12, size=64)
  import_images.import_images(str(root / "src"), "pics64", str(root / "tfds"))
  return str(root / "tfds"), "pics64"


def _streamed(dataset_dir, image_size=64, **kwargs):
  data_dir, name = dataset_dir
  return data.load_split(name, "train", data_dir, image_size, pipeline="stream", budget_bytes=_BIG, **kwargs)


def _take(batches, count):
  taken = [next(batches) for _ in range(count)]
  return [b["image"] for b in taken], [b["label"] for b in taken]


def _keys(images):
  return [image.tobytes() for image in images]


def test_each_epoch_visits_every_image_once_in_a_new_order(pics64):
  dataset = _streamed(pics64)
  assert isinstance(dataset, streaming.StreamingDataset) and len(dataset) == 24
  in_memory = data.load_split(pics64[1], "train", pics64[0], 64, pipeline="memory", budget_bytes=_BIG)
  batches = dataset.batches(8, seed=0, to_devices=lambda batch: batch)
  images, labels = _take(batches, 6)  # two epochs of 3 batches
  batches.close()
  first, second = np.concatenate(images[:3]), np.concatenate(images[3:])
  assert sorted(_keys(first)) == sorted(_keys(second)) == sorted(_keys(in_memory.images))
  assert _keys(first) != _keys(second)  # reshuffled
  label_of = dict(zip(_keys(in_memory.images), in_memory.labels))
  assert [label_of[k] for k in _keys(first)] == list(np.concatenate(labels[:3]))


def test_a_saved_position_continues_the_sequence(pics64):
  dataset = _streamed(pics64)
  batches = dataset.batches(8, seed=3, to_devices=lambda batch: batch)
  expected, _ = _take(batches, 5)
  batches.close()
  batches = dataset.batches(8, seed=3, to_devices=lambda batch: batch)
  _take(batches, 2)
  position = batches.position
  batches.close()
  resumed = dataset.batches(8, seed=3, to_devices=lambda batch: batch, position=position)
  images, _ = _take(resumed, 3)
  resumed.close()
  assert all((a == b).all() for a, b in zip(images, expected[2:]))


def test_host_shards_partition_the_split_and_images_fit_the_model(pics64):
  shards = [_streamed(pics64, image_size=32, shard_index=i, shard_count=2) for i in range(2)]
  seen = []
  for shard in shards:
    batches = shard.batches(12, seed=0, to_devices=lambda batch: batch)
    images, _ = _take(batches, 1)
    batches.close()
    assert images[0].shape == (12, 32, 32, 3)
    seen += _keys(images[0])
  whole = data.load_split(pics64[1], "train", pics64[0], 32, pipeline="memory", budget_bytes=_BIG)
  assert sorted(seen) == sorted(_keys(whole.images))  # both paths crop and resize alike
  assert shards[0].preview(5).shape == (5, 32, 32, 3)


def test_worker_processes_give_the_same_batches(pics64):
  streams = []
  for workers in (0, 2):
    batches = _streamed(pics64, workers=workers).batches(8, seed=1, to_devices=lambda batch: batch)
    streams.append(_take(batches, 4)[0])
    batches.close()
  assert all((a == b).all() for a, b in zip(*streams))


def test_auto_streams_what_exceeds_the_budget(pics64):
  data_dir, name = pics64
  split_bytes = 24 * 64 * 64 * 3
  small = data.load_split(name, "train", data_dir, 64, budget_bytes=split_bytes)
  large = data.load_split(name, "train", data_dir, 64, budget_bytes=split_bytes - 1)
  assert isinstance(small, data.ImageDataset) and isinstance(large, streaming.StreamingDataset)
  assert data.memory_budget_bytes(jax.local_devices()) > 0
  with pytest.raises(UserError, match="--input_pipeline=fast is unknown"):
    data.load_split(name, "train", data_dir, 64, pipeline="fast", budget_bytes=_BIG)


def test_random_mirror_flips_about_half_the_images():
  images = np.random.RandomState(0).rand(256, 4, 4, 1).astype(np.float32)
  mirrored = np.asarray(train.random_mirror(images, jax.random.PRNGKey(0)))
  flipped = [(m == i[:, ::-1]).all() and not (m == i).all() for m, i in zip(mirrored, images)]
  kept = [(m == i).all() for m, i in zip(mirrored, images)]
  assert all(f or k for f, k in zip(flipped, kept))
  assert 96 < sum(flipped) < 160


def _train(workdir, dataset_dir, **overrides):
  data_dir, name = dataset_dir
  config = tiny_config(dataset=name, data_dir=data_dir, image_size=8, input_pipeline="stream",
                       batch_size=8, mirror=True, **overrides)
  return trainer.train_and_evaluate(config, str(workdir))


def _generator(workdir):
  return jax.tree.leaves(ocp.StandardCheckpointer().restore(os.path.join(workdir, "export", "generator")))


def _max_difference(a, b):
  return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


def test_streamed_training_resumes_exactly(pics64, tmp_path):
  straight, resumed = tmp_path / "straight", tmp_path / "resumed"
  _train(straight, pics64, num_steps=20)
  _train(resumed, pics64, num_steps=10)
  # A control: the same resume without the saved data position reads other batches.
  unpositioned = tmp_path / "unpositioned"
  shutil.copytree(resumed, unpositioned)
  shutil.rmtree(unpositioned / "checkpoints" / "10" / "data")
  _train(resumed, pics64, num_steps=20)
  _train(unpositioned, pics64, num_steps=20)

  assert os.path.isdir(straight / "checkpoints" / "20" / "data")
  assert _max_difference(_generator(straight), _generator(resumed)) == 0.0
  assert _max_difference(_generator(straight), _generator(unpositioned)) > 0.0
  with open(resumed / "losses.csv") as f:
    assert [int(row["step"]) for row in csv.DictReader(f)] == [5, 10, 15, 20]
  assert (straight / "real_samples.png").exists() and (straight / "progress.gif").exists()


def test_a_split_read_in_chunks_is_the_split_in_memory(pics64, monkeypatch):
  data_dir, name = pics64
  monkeypatch.setattr(data.sources, "READ_CHUNK", 5)  # 24 images: 5 chunks, the last one short
  in_memory = data.load_images(name, data_dir=data_dir, image_size=32)
  whole = in_memory.images
  chunks = list(data.iterate_images(name, "train", data_dir, 32))
  assert len(chunks) == 5 and (np.concatenate(chunks) == whole).all()
  subset = np.concatenate(list(data.iterate_images(name, "train", data_dir, 32, indices=[3, 7, 20])))
  assert (subset == whole[[3, 7, 20]]).all()
  # With their labels (the class metrics' reference): the same images, each with its label.
  labelled = list(data.iterate_labelled_images(name, "train", data_dir, 32))
  assert (np.concatenate([images for images, _ in labelled]) == whole).all()
  labels = np.concatenate([chunk_labels for _, chunk_labels in labelled])
  assert labels.dtype == np.int32 and (labels == in_memory.labels).all() and len(set(labels)) > 1
