"""``patchd test``: prove a bundle on a matrix of configurations before a rollout.

A matrix file (:mod:`patchd.matrix.model`) names releases, extension sets, PHP versions and
customer modifications; every combination is a cell, materialised in a scratch folder
(:mod:`patchd.matrix.cells`) and checked (:mod:`patchd.matrix.checks`): the bundle applies
with the right variant, ``php -l`` passes, the added lines need no newer PHP than the cell
has (:mod:`patchd.matrix.minphp`), and a smoke test with PHP's built-in web server shows no
new error (:mod:`patchd.matrix.smoke`). Results go into the bundle as ``tested.json``
(:mod:`patchd.matrix.results`); rollouts ask :mod:`patchd.matrix.tested` whether an
installation's configuration was tested.
"""
