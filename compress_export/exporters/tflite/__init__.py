"""TFLite targets: conversion by TensorFlow's converter, INT8 ranges from our calibrators, LiteRT runner."""
