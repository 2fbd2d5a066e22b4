/* C side of the tour's result demo (c-tests/examples/tour.rs): C calls the
 * exported managed function TourNewByte and reads the byte it returns. */
extern unsigned char *TourNewByte(void);

int ct_tour_read_exported(void) { return *TourNewByte(); }
