"""The studio's budget search (``spfde-train search``): the Search tab, its figures and report."""
