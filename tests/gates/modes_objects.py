"""A class whose ``concurrency`` attribute is no mode (its host refuses it)."""

from raydo import DurableObject


class Loose(DurableObject):
    concurrency = "loose"
