"""What goes into a run: image sets (`sets`), the transforms T that hide part of an image
(`masks`) and the Gaussian noise images the forget set is mapped towards (`noise`)."""
