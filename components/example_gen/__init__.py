"""Custom TFX ExampleGen for PASCAL VOC 2012 and Cityscapes folder layouts."""
