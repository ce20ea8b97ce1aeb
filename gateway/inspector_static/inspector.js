// raydo inspector
