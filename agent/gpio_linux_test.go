//go:build linux

package agent

import (
	"testing"
	"unsafe"
)

// The GPIO uAPI v2 structs must match linux/gpio.h byte for byte: the ioctl numbers encode
// their sizes, and a wrong layout would be refused by the kernel (or worse, misread).
func TestGPIOv2Layout(t *testing.T) {
	if s := unsafe.Sizeof(gpioV2LineRequest{}); s != 592 {
		t.Errorf("sizeof(struct gpio_v2_line_request) = %d, want 592", s)
	}
	if s := unsafe.Sizeof(gpioV2LineConfig{}); s != 272 {
		t.Errorf("sizeof(struct gpio_v2_line_config) = %d, want 272", s)
	}
	if s := unsafe.Sizeof(gpioV2LineValues{}); s != 16 {
		t.Errorf("sizeof(struct gpio_v2_line_values) = %d, want 16", s)
	}
	if gpioV2GetLineIoctl != 0xC250B407 || gpioV2LineGetValuesIoctl != 0xC010B40E {
		t.Errorf("ioctl numbers %#x %#x, want 0xc250b407 0xc010b40e", gpioV2GetLineIoctl, gpioV2LineGetValuesIoctl)
	}
	if _, err := ParseGPIO("gpiochip0:17"); err != nil {
		t.Error(err)
	}
	if g, _ := ParseGPIO("2:5"); g == nil || g.Chip != "/dev/gpiochip2" || g.Line != 5 {
		t.Errorf("ParseGPIO(2:5) = %+v", g)
	}
	if _, err := ParseGPIO("gpiochip0"); err == nil {
		t.Error("no line accepted")
	}
}
